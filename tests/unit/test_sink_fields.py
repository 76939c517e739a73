"""Field mapping (`fields`): validation with file:line, and each local sink's mapped layout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dotenv import dotenv_values
from pydantic import SecretStr

from provisioner.errors import ManifestError
from provisioner.manifest import load_manifests
from provisioner.model import KafkaLogin, SinkRecord
from provisioner.sinks.base import SinkContext
from provisioner.sinks.env import EnvSink, EnvSinkOptions
from provisioner.sinks.fields import RECORD_FIELDS, FieldMap, check_fields
from provisioner.sinks.file import FileSink, FileSinkOptions
from tests.conftest import WriteManifest

MAPPING = {
    "SPRING_CLIENT_ID": "client_id",
    "STREAMKAP_CLIENT_SECRET": "secret",
    "ROLES": "role_ids",
}


def record(client_id: str = "cid-1") -> SinkRecord:
    return SinkRecord(
        "payments-api",
        "ingest",
        client_id,
        SecretStr(f"{client_id}-secret-value"),
        role_ids=("r1", "r2"),
    )


def manifest(fields: str) -> str:
    return (
        "version: 1\n"
        "sinks:\n"
        f"  local: {{type: file, path: ./s, fields: {fields}}}\n"
        "services:\n"
        "  - name: svc\n"
        "    credentials:\n"
        "      - name: one\n"
        "        roles: [admin]\n"
        "        sinks: [local]\n"
    )


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ("{ID: client_id}", "secret must be mapped"),
        ("{ID: client_id, S: secret, X: colour}", "unknown record field 'colour'"),
        ("{ID: client_id, S: secret, id: service}", None),  # distinct in a file
        ("{PW: kafka_password, U: kafka_username}", "or project_key_id"),
    ],
)
def test_fields_are_validated_with_file_and_line(
    write_manifest: WriteManifest, fields: str, message: str | None
) -> None:
    path = write_manifest("a.yaml", manifest(fields))
    if message is None:
        load_manifests([path])
        return
    with pytest.raises(ManifestError) as caught:
        load_manifests([path])
    problem = caught.value.problems[0]  # (the credential naming it reports it unknown too)
    assert problem.startswith(f"{path}:3:")
    assert message in problem


def test_a_project_keys_identity_is_enough_for_a_mapping() -> None:
    """A Kafka-only key has no client_id/secret; which fields each credential needs is checked
    per credential when manifests load (tests/unit/test_manifest_project_keys.py)."""
    mapping = {"PK": "project_key_id", "PW": "kafka_password"}
    assert check_fields(mapping) == mapping


def test_env_output_keys_that_spell_one_variable_are_duplicates() -> None:
    with pytest.raises(ValueError, match="duplicate output key"):
        EnvSinkOptions(path="x.env", fields={"client-id": "client_id", "CLIENT_ID": "secret"})


@pytest.mark.anyio
async def test_file_sink_stores_exactly_the_mapped_keys_and_reads_them_back(
    tmp_path: Path,
) -> None:
    sink = FileSink("f", FileSinkOptions(path="s", fields=MAPPING), SinkContext(cwd=tmp_path))
    await sink.write(record())
    stored = json.loads((tmp_path / "s" / "payments-api" / "ingest.json").read_text())
    assert stored == {
        "SPRING_CLIENT_ID": "cid-1",
        "STREAMKAP_CLIENT_SECRET": "cid-1-secret-value",
        "ROLES": ["r1", "r2"],
    }
    assert await sink.read("payments-api", "ingest") == "cid-1"
    found = await sink.read_record("payments-api", "ingest")
    assert found is not None
    assert found.secret is not None
    assert (found.key, found.secret.get_secret_value(), found.role_ids) == (
        "payments-api/ingest",
        "cid-1-secret-value",
        ("r1", "r2"),
    )
    previous = await sink.write(record("cid-2"))
    assert previous.client_id == "cid-1"
    await sink.restore("payments-api", "ingest", "cid-2", previous)
    assert await sink.read("payments-api", "ingest") == "cid-1"


@pytest.mark.anyio
async def test_env_sink_uses_the_mapped_suffixes(tmp_path: Path) -> None:
    options = EnvSinkOptions(path="x.env", fields=MAPPING)
    sink = EnvSink("e", options, SinkContext(cwd=tmp_path))
    await sink.write(record())
    values = dotenv_values(tmp_path / "x.env")
    assert values == {
        "STREAMKAP_PAYMENTS_API_INGEST_SPRING_CLIENT_ID": "cid-1",
        "STREAMKAP_PAYMENTS_API_INGEST_STREAMKAP_CLIENT_SECRET": "cid-1-secret-value",
        "STREAMKAP_PAYMENTS_API_INGEST_ROLES": "r1,r2",
    }
    assert await sink.read("payments-api", "ingest") == "cid-1"
    found = await sink.read_record("payments-api", "ingest")
    assert found is not None
    assert found.secret is not None
    assert found.secret.get_secret_value() == "cid-1-secret-value"
    await sink.delete("payments-api", "ingest", "cid-1")
    assert dotenv_values(tmp_path / "x.env") == {}


def project_key(client_id: str | None = "api-1") -> SinkRecord:
    return SinkRecord(
        "payments-api",
        "reader",
        client_id,
        SecretStr("api-secret-value") if client_id else None,
        project_key_id="pk-1",
        kafka=KafkaLogin("reader-a1", SecretStr("kafka-password-value"), "broker:9092"),
    )


def test_record_fields_are_the_documents_fields_in_its_order() -> None:
    assert tuple(project_key().to_document()) == RECORD_FIELDS


def test_a_mapping_reads_the_project_key_id_as_the_identity() -> None:
    fields = FieldMap({"ID": "client_id", "S": "secret", "PK": "project_key_id"})
    assert fields.identity({"ID": "api-1", "S": "x", "PK": "pk-1"}) == "pk-1"
    assert fields.identity({"ID": "cid-1", "S": "x"}) == "cid-1"
    assert fields.identity({"ID": "", "PK": ""}) is None
    assert FieldMap({"ID": "client_id", "S": "secret"}).identity({"PK": "pk-1"}) is None
    assert FieldMap(None).identity(project_key(None).to_document()) == "pk-1"


@pytest.mark.parametrize(
    ("document", "whole"),
    [
        ({"PK": "pk-1"}, False),  # an id without the secrets of any access
        ({"PK": "pk-1", "U": "reader-a1"}, False),  # a Kafka user without its password
        ({"PK": "pk-1", "U": "reader-a1", "PW": "kafka-password-value"}, True),
        ({"PK": "pk-1", "ID": "api-1"}, False),  # half an API access: damaged
        ({"PK": "pk-1", "ID": "api-1", "S": "api-secret-value"}, True),
        ({"ID": "api-1", "S": "api-secret-value"}, True),  # a client credential
    ],
)
def test_a_mapped_record_reads_back_only_when_it_holds_a_whole_credential(
    document: dict[str, str], whole: bool
) -> None:
    fields = FieldMap(
        {
            "ID": "client_id",
            "S": "secret",
            "PK": "project_key_id",
            "U": "kafka_username",
            "PW": "kafka_password",
        }
    )
    found = fields.from_document(document, "payments-api", "reader")
    assert (found is not None) == whole
    if found is not None:
        assert found.identity == document.get("PK", document.get("ID"))


def test_the_secrets_of_a_stored_object_are_found_for_redaction() -> None:
    document = project_key().to_document()
    found = FieldMap(None).secrets(document)
    assert {"api-secret-value", "kafka-password-value"} <= set(found)
    only_properties = FieldMap({"PK": "project_key_id", "P": "kafka_properties"})
    found = only_properties.secrets({"PK": "pk-1", "P": document["kafka_properties"]})
    assert "kafka-password-value" in found
