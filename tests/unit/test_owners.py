"""Owners: markers name the manifests' owner, and a run plans only its own owner's credentials."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from provisioner.errors import ManifestError
from provisioner.manifest import load_manifests
from provisioner.model import (
    Kind,
    Reason,
    RemoteCredential,
    marked_description,
    owner_key,
    split_owner,
)
from provisioner.reconcile.plan import plan
from tests.conftest import WriteManifest
from tests.support.factories import desired

NOW = datetime(2026, 11, 1, tzinfo=UTC)

ONE_SERVICE = """\
version: 1
{owner}defaults:
  roles: [read_only]
  sinks: [local]
sinks:
  local: {{type: file, path: ./secrets}}
services:
  - name: {service}
    credentials:
      - name: ingest
"""


def remote(client_id: str, key: str, owner: str = "default") -> RemoteCredential:
    return RemoteCredential(
        client_id=client_id,
        description=marked_description(None, key, owner),
        role_ids=frozenset({"role-admin"}),
        service_id=None,
        created_at=NOW - timedelta(days=1),
    )


def test_a_named_owner_is_part_of_the_marker_and_the_default_marker_is_unchanged() -> None:
    assert marked_description("Ingest", "api/ingest", "team-a") == (
        "Ingest [provisioner:team-a:api/ingest]"
    )
    assert marked_description("Ingest", "api/ingest") == "Ingest [provisioner:api/ingest]"
    assert owner_key("x [provisioner:team-a:api/ingest]") == "team-a:api/ingest"
    assert split_owner("team-a:api/ingest") == ("team-a", "api/ingest")
    assert split_owner("api/ingest") == ("default", "api/ingest")


def test_desired_credentials_carry_the_manifest_owner(write_manifest: WriteManifest) -> None:
    path = write_manifest("a.yaml", ONE_SERVICE.format(owner="owner: team-a\n", service="api"))
    manifests = load_manifests([path])
    (credential,) = manifests.credentials
    assert manifests.owner == "team-a"
    assert credential.remote_description == "[provisioner:team-a:api/ingest]"


def test_files_naming_different_owners_are_an_error_with_file_and_line(
    write_manifest: WriteManifest,
) -> None:
    first = write_manifest("a.yaml", ONE_SERVICE.format(owner="owner: team-a\n", service="api"))
    unnamed = write_manifest("b.yaml", ONE_SERVICE.format(owner="", service="web"))
    second = write_manifest("c.yaml", ONE_SERVICE.format(owner="owner: team-b\n", service="db"))
    with pytest.raises(ManifestError) as caught:
        load_manifests([first, unnamed, second])
    (problem,) = caught.value.problems
    assert problem.startswith(f"{second}:2: owner: owner 'team-b' differs from 'team-a'")
    assert f"{first}:2" in problem


def test_orphans_are_only_the_runs_owners_and_others_are_counted_once() -> None:
    mine = dataclasses.replace(desired(), owner="team-a")
    world = [
        remote("c1", "api/ingest", "team-a"),
        remote("c2", "api/ingest", "team-b"),  # same key, other owner: not a duplicate of ours
        remote("c3", "old/gone", "team-a"),
        remote("c4", "old/gone", "team-b"),
        remote("c5", "old/gone"),  # the default owner's
    ]
    held = {"api/ingest": {"local": "c1"}}
    result = plan([mine], world, held, now=NOW, prune=True, owner="team-a")
    touched = {a.client_id for a in result.actions}
    assert touched == {"c1", "c3"}
    assert [(a.kind, a.reason, a.key) for a in result.actions] == [
        (Kind.NOOP, Reason.UP_TO_DATE, "api/ingest"),
        (Kind.DELETE, Reason.ORPHAN, "old/gone"),
    ]
    assert result.other_owners == (("default", 1), ("team-b", 2))


def test_the_default_owner_never_plans_a_named_owners_credentials() -> None:
    result = plan([desired()], [remote("c2", "api/ingest", "team-b")], {}, now=NOW, prune=True)
    assert [(a.kind, a.reason) for a in result.actions] == [(Kind.CREATE, Reason.MISSING)]
    assert result.other_owners == (("team-b", 1),)
