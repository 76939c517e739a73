"""Loading and validating manifests: defaults, keys, and every error with file, line and field."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from provisioner.errors import ManifestError
from provisioner.manifest import load_manifests, manifest_schema
from provisioner.sinks import parse_sink_uri
from tests.conftest import WriteManifest

GOOD = """\
version: 1
defaults:
  roles: [read_only]
  sinks: [local]
  rotate_after: 90d
sinks:
  local: {type: file, path: ./secrets}
services:
  - name: payments-api
    service_id: svc-1
    credentials:
      - name: ingest
        description: Payments ingestion
        roles: [admin]
        sinks: [local]
        rotate_after: 30d
        grace: 1h
      - name: reporting
"""


def problems_of(*paths: Path) -> list[str]:
    with pytest.raises(ManifestError) as caught:
        load_manifests(list(paths))
    return list(caught.value.problems)


def test_defaults_apply_where_a_credential_does_not_say(write_manifest: WriteManifest) -> None:
    manifests = load_manifests([write_manifest("a.yaml", GOOD)])
    ingest, reporting = manifests.credentials
    assert ingest.key == "payments-api/ingest"
    assert ingest.roles == ("admin",)
    assert ingest.rotate_after == timedelta(days=30)
    assert ingest.grace == timedelta(hours=1)
    assert reporting.roles == ("read_only",)
    assert reporting.rotate_after == timedelta(days=90)
    assert reporting.grace == timedelta(0)
    assert reporting.service_id == "svc-1"
    assert reporting.remote_description == "[provisioner:payments-api/reporting]"
    assert ingest.remote_description == "Payments ingestion [provisioner:payments-api/ingest]"


def test_directory_loads_yaml_and_yml_files_sorted_with_several_documents(
    write_manifest: WriteManifest,
) -> None:
    write_manifest("b.yml", GOOD.replace("payments-api", "orders"))
    first = write_manifest("a.yaml", GOOD + "---\n" + GOOD.replace("payments-api", "billing"))
    write_manifest("notes.txt", "not a manifest")
    manifests = load_manifests([first.parent])
    services = [c.service for c in manifests.credentials]
    assert services == ["payments-api"] * 2 + ["billing"] * 2 + ["orders"] * 2


def test_every_problem_is_reported_with_file_line_and_field(write_manifest: WriteManifest) -> None:
    path = write_manifest(
        "bad.yaml",
        """\
version: 1
sinks:
  local: {type: file, path: ./s}
  odd: {type: carrier-pigeon}
services:
  - name: api
    credentials:
      - name: one
        sinks: [local]
        roles: []
      - name: Two
        sinks: [local]
        rolez: [admin]
      - name: three
        sinks: [nowhere]
        rotate_after: 3 fortnights
""",
    )
    problems = problems_of(path)
    assert f"{path}:10: services[api].credentials[one].roles: must not be empty" in problems[0]
    assert any(
        p.startswith(f"{path}:11: services[api].credentials[1].name: invalid name")
        for p in problems
    )
    assert (
        f"{path}:13: services[api].credentials[1].rolez: unknown field; did you mean 'roles'?"
        in problems
    )
    assert any(
        p.startswith(f"{path}:16: services[api].credentials[three].rotate_after: invalid duration")
        for p in problems
    )
    assert any(
        p.startswith(f"{path}:4: sinks.odd.type: unknown sink type 'carrier-pigeon'")
        for p in problems
    )


def test_unknown_sink_and_missing_sink_are_errors(write_manifest: WriteManifest) -> None:
    path = write_manifest(
        "a.yaml",
        "version: 1\nservices:\n  - name: api\n    credentials:\n"
        "      - name: one\n        sinks: [nowhere]\n      - name: two\n"
        "defaults: {roles: [Admin]}\n",
    )
    problems = problems_of(path)
    assert problems == [
        f"{path}:6: services[api].credentials[one].sinks: unknown sink 'nowhere'",
        f"{path}:7: services[api].credentials[two]: no sink: name one in `sinks`, "
        "in `defaults.sinks`, or give --sink",
    ]


def test_cli_default_sink_serves_credentials_that_name_none(write_manifest: WriteManifest) -> None:
    path = write_manifest(
        "a.yaml",
        "version: 1\nservices:\n  - name: api\n    credentials:\n      - name: one\n"
        "defaults: {roles: [Admin]}\n",
    )
    manifests = load_manifests([path], [parse_sink_uri("default", "file:./out")])
    assert manifests.credentials[0].sinks == ("default",)
    assert manifests.sinks["default"].type == "file"


def test_keys_are_unique_across_files(write_manifest: WriteManifest) -> None:
    first = write_manifest("a.yaml", GOOD)
    second = write_manifest("b.yaml", GOOD)
    problems = problems_of(first.parent)
    assert len(problems) == 2
    assert problems[0].startswith(
        f"{second}:12: services[payments-api].credentials[ingest].name: duplicate credential"
    )
    assert f"(first at {first}:12: services[payments-api].credentials[ingest])" in problems[0]


def test_a_sink_defined_twice_differently_is_an_error(write_manifest: WriteManifest) -> None:
    write_manifest("a.yaml", GOOD)
    other = write_manifest(
        "b.yaml", GOOD.replace("payments-api", "orders").replace("./secrets", "./elsewhere")
    )
    problems = problems_of(other.parent)
    assert problems == [
        f"{other}:7: sinks.local: sink 'local' defined again with other options "
        f"(first at {other.parent / 'a.yaml'}:7: sinks.local)"
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("version: 1\nservices: [\n", ":3: invalid YAML"),
        ("- just\n- a list\n", ":1: (document): a manifest document must be a mapping"),
        ("version: 2\n", ":1: version: unsupported version 2 (expected 1)"),
        ("version: 1\nversion: 1\n", ":2: duplicate key 'version'"),
        ("a: &x [1]\nb: *x\n", ":2: YAML aliases (*name) are not allowed"),
        ("version: !!python/object:os.system ls\n", ":1: invalid YAML"),
    ],
)
def test_broken_yaml_is_named_by_line(
    write_manifest: WriteManifest, text: str, expected: str
) -> None:
    path = write_manifest("a.yaml", text)
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}{expected}"), problem


def test_non_utf8_bytes_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_bytes(b"version: 1\n# caf\xe9\n")
    assert problems_of(path) == [f"{path}:2: not valid UTF-8"]


def test_schema_describes_the_format() -> None:
    schema = manifest_schema()
    json.dumps(schema)
    assert schema["properties"]["version"]["const"] == 1
    assert schema["additionalProperties"] is False
    assert "services" in schema["properties"]


def test_keys_that_would_share_dotenv_variables_are_rejected(write_manifest: WriteManifest) -> None:
    path = write_manifest(
        "a.yaml",
        "version: 1\ndefaults: {sinks: [dotenv],\n  roles: [Admin]}\n"
        "sinks:\n  dotenv: {type: env, path: ./x.env}\n"
        "services:\n  - name: a-b\n    credentials:\n      - name: c\n"
        "  - name: a\n    credentials:\n      - name: b-c\n",
    )
    # Issue 21: the message now also says where the first of the two is (file:line: field).
    assert problems_of(path) == [
        f"{path}:12: services[a].credentials[b-c].name: 'a/b-c' and 'a-b/c' (at {path}:9: "
        "services[a-b].credentials[c].name) would both be stored as STREAMKAP_A_B_C_CLIENT_ID "
        "in sink 'dotenv': each write of one would replace the other; rename one, or change the "
        "sink's `fields`"
    ]


def test_a_bare_number_as_a_duration_says_how_to_write_one(write_manifest: WriteManifest) -> None:
    path = write_manifest("a.yaml", GOOD.replace("rotate_after: 30d", "rotate_after: 90"))
    (problem,) = problems_of(path)
    assert "rotate_after: got a number (90): write a duration such as 90d" in problem
    assert "a int" not in problem


def test_typos_get_a_suggestion(write_manifest: WriteManifest) -> None:
    """An unknown field, sink name or sink option names the closest valid one."""
    text = (
        GOOD.replace("rotate_after: 30d", "rotate_afer: 30d")
        .replace("sinks: [local]\n        rotate", "sinks: [locl]\n        rotate")
        .replace("local: {type: file, path: ./secrets}", "local: {type: file, pth: ./secrets}")
    )
    problems = problems_of(write_manifest("a.yaml", text))
    assert any(
        p.endswith("rotate_afer: unknown field; did you mean 'rotate_after'?") for p in problems
    )
    assert any(p.endswith("sinks.local.pth: unknown field; did you mean 'path'?") for p in problems)


def test_an_unknown_sink_name_suggests_a_defined_one(write_manifest: WriteManifest) -> None:
    text = GOOD.replace("local: {", "vault: {type: vault, address: 'http://v:8200'}\n  local: {")
    path = write_manifest(
        "a.yaml", text.replace("sinks: [local]\n        rotate", "sinks: [valut]\n        rotate")
    )
    assert problems_of(path) == [
        f"{path}:16: services[payments-api].credentials[ingest].sinks: "
        "unknown sink 'valut'; did you mean 'vault'?"
    ]


def test_error_paths_name_services_and_credentials(write_manifest: WriteManifest) -> None:
    """A path reads `services[orders].credentials[cdc]`, with no entries to count."""
    text = GOOD + "  - name: orders\n    credentials:\n      - name: cdc\n        roles: []\n"
    (problem,) = problems_of(write_manifest("a.yaml", text))
    assert ": services[orders].credentials[cdc].roles: must not be empty" in problem


def _properties(node: object) -> list[tuple[str, dict[str, object]]]:
    """Every (name, schema) under a `properties` anywhere in a JSON Schema."""
    found: list[tuple[str, dict[str, object]]] = []
    if isinstance(node, dict):
        found.extend(node.get("properties", {}).items())
        for value in node.values():
            found.extend(_properties(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_properties(value))
    return found


def test_every_field_of_the_schema_has_a_description() -> None:
    """Editors show the description on hover; a field without one shows nothing."""
    properties = _properties(manifest_schema())
    assert len(properties) >= 17  # the document, defaults, sinks, services and credentials
    assert [name for name, schema in properties if not schema.get("description")] == []


ACCESS = """\
version: 1
sinks:
  local: {type: file, path: ./secrets}
defaults:
  sinks: [local]
services:
  - name: api
    credentials:
      - name: both
        roles: [Admin]
        permissions: [perm-1]
      - name: neither
"""


def test_roles_and_permissions_together_or_neither_are_refused(
    write_manifest: WriteManifest,
) -> None:
    """The API refuses both at once, and a credential with neither can do nothing."""
    path = write_manifest("a.yaml", ACCESS)
    assert problems_of(path) == [
        f"{path}:11: services[api].credentials[both].permissions: give roles or permissions, "
        "not both: the API refuses a credential with both",
        f"{path}:12: services[api].credentials[neither]: no access: give `roles` "
        "(or `permissions`), here or in `defaults`; a credential without either can do nothing",
    ]


def test_a_credential_naming_permissions_does_not_inherit_default_roles(
    write_manifest: WriteManifest,
) -> None:
    path = write_manifest(
        "a.yaml",
        GOOD.replace("- name: reporting\n", "- name: reporting\n        permissions: [p1]\n"),
    )
    _, reporting = load_manifests([path]).credentials
    assert (reporting.roles, reporting.permission_ids) == ((), ("p1",))
