"""What loading keeps for a run: errors found after loading still name file, line and field."""

from __future__ import annotations

import pytest

from provisioner.errors import ManifestError
from provisioner.manifest import load_manifests
from provisioner.model import Role
from provisioner.reconcile.resolve import resolve_roles
from tests.conftest import WriteManifest

TEAM = """\
version: 1
defaults:
  roles: [Read Only]
sinks:
  local: {{type: file, path: ./secrets}}
services:
  - name: {service}
    credentials:
      - name: ingest
        sinks: [local]
      - name: export
        roles: [{role}]
        sinks: [local]
"""
ROLES = [Role("r-ro", "ReadOnly", "Read Only"), Role("r-admin", "Admin", "Admin")]


def test_a_bad_role_found_after_loading_names_its_file_line_and_field(
    write_manifest: WriteManifest,
) -> None:
    first = write_manifest("a.yaml", TEAM.format(service="api", role="Admin"))
    second = write_manifest("b.yaml", TEAM.format(service="web", role="Admni"))
    manifests = load_manifests([first, second])
    with pytest.raises(ManifestError) as caught:
        resolve_roles(manifests, ROLES)
    (problem,) = caught.value.problems
    assert problem.startswith(
        f"{second}:12: services[web].credentials[export].roles: unknown role 'Admni'"
    )


def test_credentials_of_many_files_share_what_is_equal(write_manifest: WriteManifest) -> None:
    paths = [
        write_manifest(f"{name}.yaml", TEAM.format(service=name, role="Admin"))
        for name in ("api", "web")
    ]
    api_ingest, api_export, _, web_export = load_manifests(paths).credentials
    assert api_export.origin.file != web_export.origin.file
    assert api_export.origin.path == ("services", 0, "credentials", 1)
    assert api_export.origin.path is web_export.origin.path
    assert api_export.roles_origin.path == ("services", 0, "credentials", 1, "roles")
    assert api_ingest.roles_origin.path == ("defaults", "roles")
    assert api_ingest.sinks is web_export.sinks
    assert resolve_roles(load_manifests(paths), ROLES)[0].role_ids == ("r-ro",)
