"""Role references resolved to ids, and how an unknown one is reported."""

from __future__ import annotations

import pytest

from provisioner.cli.main import exit_code
from provisioner.errors import ManifestError
from provisioner.manifest import load_manifests
from provisioner.reconcile.model import Role
from provisioner.reconcile.resolve import resolve_roles
from tests.conftest import WriteManifest

ROLES = (Role("r-1", "read_only", "Read only"), Role("r-2", "admin", "Admin"))
ONE_BAD_ROLE = """\
version: 1
sinks:
  local: {type: file, path: ./secrets}
services:
  - name: payments-api
    credentials:
      - name: ingest
        roles: [raed_only]
        sinks: [local]
"""


def test_one_unknown_role_is_one_problem_and_the_known_roles_a_hint(
    write_manifest: WriteManifest,
) -> None:
    manifests = load_manifests([write_manifest("a.yaml", ONE_BAD_ROLE)])
    with pytest.raises(ManifestError) as caught:
        resolve_roles(manifests, ROLES)
    assert len(caught.value.problems) == 1
    assert caught.value.hints == ("(known roles: admin, read_only)",)


def test_an_unknown_role_suggests_the_closest_key(write_manifest: WriteManifest) -> None:
    manifests = load_manifests([write_manifest("a.yaml", ONE_BAD_ROLE)])
    with pytest.raises(ManifestError) as caught:
        resolve_roles(manifests, ROLES)
    assert caught.value.problems[0].endswith("unknown role 'raed_only'; did you mean 'read_only'?")


def test_the_cli_counts_problems_not_hints(capsys: pytest.CaptureFixture[str]) -> None:
    error = ManifestError(["a.yaml:8: x: unknown role 'raed_only'"], hints=["(known roles: a)"])
    assert exit_code(error) == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines[1] == "(known roles: a)"
    assert lines[-1] == "error: 1 problem(s) in the manifests; nothing was changed"
