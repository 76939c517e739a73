"""Issue 21, item 5 and the low item, issue 22, item 4: validation checks what the sinks and the
API would store (final names, exact values, the description with its marker) and reports every
problem of every file in one pass."""

from __future__ import annotations

from pathlib import Path

import pytest
from dotenv import dotenv_values
from pydantic import SecretStr

from provisioner.errors import ManifestError
from provisioner.manifest import load_manifests
from provisioner.model import MAX_DESCRIPTION, SinkRecord
from provisioner.sinks import SinkContext
from provisioner.sinks.env import EnvSink, EnvSinkOptions
from tests.conftest import WriteManifest
from tests.support.kube_support import register_in_process
from tests.support.manifests import ORDERS
from tests.support.shell import bash_value


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ManifestError) as caught:
        load_manifests([path])
    return list(caught.value.problems)


def test_a_fields_suffix_and_a_credential_name_that_make_one_variable_are_refused(
    write_manifest: WriteManifest,
) -> None:
    """orders/cdc's SERVICE_ID and orders/cdc-service's ID are both one dotenv variable."""
    path = write_manifest("a.yaml", ORDERS)
    assert problems_of(path) == [
        f"{path}:13: services[orders].credentials[cdc-service].name: 'orders/cdc-service' and "
        f"'orders/cdc' (at {path}:12: services[orders].credentials[cdc].name) would both be "
        "stored as STREAMKAP_ORDERS_CDC_SERVICE_ID in sink 'dotenv': each write of one would "
        "replace the other; rename one, or change the sink's `fields`"
    ]


def test_the_same_names_in_two_different_sinks_do_not_collide(
    write_manifest: WriteManifest,
) -> None:
    text = ORDERS.replace(
        "      - name: cdc-service\n", "      - name: cdc-service\n        sinks: [other]\n"
    )
    text = text.replace(
        "sinks:\n  dotenv:", "sinks:\n  other: {type: env, path: ./other.env}\n  dotenv:"
    )
    manifests = load_manifests([write_manifest("a.yaml", text)])
    assert [c.key for c in manifests.credentials] == ["orders/cdc", "orders/cdc-service"]


KUBE = """\
version: 1
defaults: {roles: [Admin], sinks: [k8s]}
sinks:
  k8s: {type: kubernetes, namespace: payments, name: "{service}-{credential}"%s}
services:
  - name: a-b
    credentials:
      - name: c
  - name: a
    credentials:
      - name: %s
"""


def test_two_keys_that_make_one_kubernetes_secret_name_are_refused(
    write_manifest: WriteManifest,
) -> None:
    register_in_process()
    path = write_manifest("a.yaml", KUBE % ("", "b-c"))
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}:11: services[a].credentials[b-c].name: 'a/b-c' and 'a-b/c'")
    assert f"(at {path}:8: services[a-b].credentials[c].name)" in problem
    assert "would both be stored as a-b-c in sink 'k8s'" in problem


def test_a_name_template_that_makes_no_valid_secret_name_is_refused(
    write_manifest: WriteManifest,
) -> None:
    register_in_process()
    path = write_manifest("a.yaml", KUBE % ("", "ends-"))
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}:11: services[a].credentials[ends-].name: sink 'k8s': ")
    assert "'a-ends-', not a valid Secret name" in problem


def test_a_kubernetes_data_key_it_cannot_store_is_refused(write_manifest: WriteManifest) -> None:
    register_in_process()
    fields = ", fields: {'client id': client_id, secret: secret}"
    (problem,) = problems_of(write_manifest("a.yaml", KUBE % (fields, "d")))
    assert "sinks.k8s.fields: " in problem
    assert "'client id': not a Secret data key" in problem


# --- values an env sink cannot store exactly ----------------------------------------------------

DESCRIBED = """\
version: 1
sinks:
  dotenv:
    type: env
    path: ./out.env
    fields: {CLIENT_ID: client_id, SECRET: secret, DESCRIPTION: description}
services:
  - name: orders
    credentials:
      - name: cdc
        roles: [Admin]
        sinks: [dotenv]
        description: %s
"""


@pytest.mark.parametrize(
    "description", ["it's $HOME", "line\rbreak", "`date` it's", "tab\there", "${X}"]
)
def test_a_description_the_env_sink_cannot_store_exactly_is_refused(
    write_manifest: WriteManifest, description: str
) -> None:
    path = write_manifest("a.yaml", DESCRIBED % json_string(description))
    (problem,) = problems_of(path)
    assert problem.startswith(
        f"{path}:13: services[orders].credentials[cdc].description: sink 'dotenv' cannot store "
        "this description exactly ("
    )
    assert problem.endswith("change it, or leave description out of the sink's `fields`")


@pytest.mark.anyio
@pytest.mark.parametrize(
    "description",
    ["it's", 'say "hi"', "a\\b", "ends\\", " # not a comment", "$5", "é ✓ =x", "two\nlines"],
)
async def test_a_description_validation_accepts_is_read_back_exactly_by_dotenv_and_bash(
    write_manifest: WriteManifest, tmp_path: Path, description: str
) -> None:
    (credential,) = load_manifests(
        [write_manifest("a.yaml", DESCRIBED % json_string(description))]
    ).credentials
    options = EnvSinkOptions(
        path="out.env", fields={"ID": "client_id", "S": "secret", "D": "description"}
    )
    sink = EnvSink("dotenv", options, SinkContext(cwd=tmp_path))
    record = SinkRecord("orders", "cdc", "cid-1", SecretStr("s3cr3t-1"), credential.description)
    await sink.write(record)
    variable = "STREAMKAP_ORDERS_CDC_D"
    assert dotenv_values(tmp_path / "out.env")[variable] == description
    assert bash_value(tmp_path / "out.env", variable) == description


def test_a_service_id_mapped_into_dotenv_is_checked_where_it_is_written(
    write_manifest: WriteManifest,
) -> None:
    text = ORDERS.replace("service_id: svc-1", "service_id: svc-${X}").replace(
        "      - name: cdc-service\n", ""
    )
    (problem,) = problems_of(write_manifest("a.yaml", text))
    assert ":10: services[orders].service_id: sink 'dotenv' cannot store this service_id" in problem


def json_string(text: str) -> str:
    """`text` as a YAML double-quoted scalar (JSON's escapes are YAML's)."""
    import json

    return json.dumps(text)


# --- the description the API keeps -------------------------------------------------------------

MARKER = " [provisioner:orders/cdc]"


def test_a_description_that_fits_with_its_marker_is_accepted(
    write_manifest: WriteManifest,
) -> None:
    longest = "d" * (MAX_DESCRIPTION - len(MARKER))
    text = DESCRIBED.replace("fields: {", "fields: {X: service, ") % longest
    (credential,) = load_manifests([write_manifest("a.yaml", text)]).credentials
    assert len(credential.remote_description) == MAX_DESCRIPTION


def test_a_description_too_long_with_its_marker_is_refused(write_manifest: WriteManifest) -> None:
    path = write_manifest("a.yaml", DESCRIBED % ("d" * (MAX_DESCRIPTION - len(MARKER) + 1)))
    assert problems_of(path) == [
        f"{path}:13: services[orders].credentials[cdc].description: {MAX_DESCRIPTION + 1} "
        "characters with the ownership marker '[provisioner:orders/cdc]' appended, but the API "
        f"keeps {MAX_DESCRIPTION} (docs/limits.md): shorten it to at most "
        f"{MAX_DESCRIPTION - len(MARKER)}"
    ]


def test_the_owner_counts_in_the_marker(write_manifest: WriteManifest) -> None:
    text = "owner: platform\n" + DESCRIBED % ("d" * (MAX_DESCRIPTION - len(MARKER)))
    (problem,) = problems_of(write_manifest("a.yaml", text))
    assert "'[provisioner:platform:orders/cdc]' appended" in problem


# --- one pass ----------------------------------------------------------------------------------


def test_field_errors_do_not_hide_an_unknown_sink_of_the_same_credential(
    write_manifest: WriteManifest,
) -> None:
    text = (
        "version: 1\nsinks:\n  vault: {type: vault, address: 'https://v:8200'}\nservices:\n"
        "  - name: api\n    credentials:\n      - name: c\n        roles: []\n"
        "        rolez: [Admin]\n        rotate_after: 9x\n        sinks: [valut]\n"
    )
    path = write_manifest("a.yaml", text)
    assert sorted(problem.split(": ", 2)[1:] for problem in problems_of(path)) == [
        ["services[api].credentials[c].roles", "must not be empty (leave the field out instead)"],
        ["services[api].credentials[c].rolez", "unknown field; did you mean 'roles'?"],
        [
            "services[api].credentials[c].rotate_after",
            'invalid duration "9x": expected a number and a unit (s, m, h, d, w)',
        ],
        ["services[api].credentials[c].sinks", "unknown sink 'valut'; did you mean 'vault'?"],
    ]


def test_an_unknown_default_sink_of_an_invalid_document_is_reported_once(
    write_manifest: WriteManifest,
) -> None:
    text = (
        "version: 1\ndefaults: {sinks: [locl], roles: [Admin]}\n"
        "sinks:\n  local: {type: file, path: ./s}\nservices:\n"
        "  - name: api\n    credentials:\n      - name: a\n        rolez: [x]\n      - name: b\n"
    )
    problems = problems_of(write_manifest("a.yaml", text))
    assert [p.split(": ", 1)[1] for p in problems] == [
        "services[api].credentials[a].rolez: unknown field; did you mean 'roles'?",
        "defaults.sinks: unknown sink 'locl'; did you mean 'local'?",
    ]
