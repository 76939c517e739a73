"""Issue 20, "Done when" item 1, end to end: a manifest mixing a client credential and project
keys (API only, API + Kafka, Kafka only, MCP scoped) converges through the real CLI, against the
simulator and against the independent fake of the documented API, both on real sockets; every
sink holds what the server holds, and a re-run writes nothing."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from dotenv import dotenv_values

from provisioner.model import owner_key
from tests.conftest import WriteManifest
from tests.support.project_key_worlds import Key, World, marked, world
from tests.support.served import human_text, run_cli, served
from tests.support.vault_support import ServedVault

#: One client credential and four project keys, one of each shape the issue names.
CREDENTIALS = """\
services:
  - name: orders
    credentials:
      - name: admin
        roles: [Read Only]
      - name: api
        kind: project-key
        roles: [Read Only]
      - name: stream
        kind: project-key
        roles: [Read Only]
        kafka:
          acls:
            - {topic: orders., pattern: prefixed, operations: [read, describe]}
            - {group: orders-reader, operations: [read]}
          allow_ips: [10.0.0.0/8]
          schema_registry: true
      - name: kafka-only
        kind: project-key
        kafka:
          acls: [{topic: payments, operations: [Read]}]
      - name: agent
        kind: project-key
        roles: [Read Only]
        mcp: {profile: read-only, allow: [list_pipelines], block: [delete_pipeline]}
"""
MIXED = (
    "version: 1\n"
    "defaults: {sinks: [files, dotenv]}\n"
    "sinks:\n"
    "  files: {type: file, path: ./secrets}\n"
    "  dotenv: {type: env, path: ./secrets.env}\n" + CREDENTIALS
)
KEYS = ("orders/api", "orders/stream", "orders/kafka-only", "orders/agent")


@pytest.fixture(params=["simulator", "fake"])
def tenant(request: pytest.FixtureRequest) -> Iterator[World]:
    with world(request.param) as served_world:
        yield served_world


def apply(tenant: World, cwd: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    result = run_cli("apply", "manifests", *extra, cwd=cwd, env=tenant.env())
    assert result.returncode == 0, result.stderr
    return result


def file_record(cwd: Path, key: str) -> dict[str, object]:
    service, name = key.split("/")
    document = json.loads((cwd / "secrets" / service / f"{name}.json").read_text())
    assert isinstance(document, dict)
    return document


def only_keys(tenant: World) -> dict[str, Key]:
    """Each marked key of the tenant, asserting there is exactly one per credential key."""
    found = marked(tenant)
    assert {name: len(keys) for name, keys in found.items()} == dict.fromkeys(KEYS, 1)
    return {name: keys[0] for name, keys in found.items()}


def assert_record_holds(record: dict[str, object], key: Key) -> None:
    """A sink's record of a project key: its id, and the secrets of exactly its accesses."""
    assert record["project_key_id"] == key.id
    if key.api_client_id is None:
        assert "client_id" not in record
        assert "secret" not in record
    else:
        assert (record["client_id"], record["secret"]) == (key.api_client_id, key.api_secret)
    if key.kafka_username is None:
        assert "kafka_username" not in record
        assert "kafka_password" not in record
    else:
        assert (record["kafka_username"], record["kafka_password"]) == (
            key.kafka_username,
            key.kafka_password,
        )


def assert_env_holds(env: dict[str, str | None], name: str, key: Key) -> None:
    prefix = f"STREAMKAP_ORDERS_{name.upper().replace('-', '_')}_"
    mine = {var.removeprefix(prefix): value for var, value in env.items() if var.startswith(prefix)}
    expected: dict[str, str | None] = {"PROJECT_KEY_ID": key.id}
    if key.api_client_id is not None:
        expected |= {"CLIENT_ID": key.api_client_id, "SECRET": key.api_secret}
    if key.kafka_username is not None:
        expected |= {"KAFKA_USERNAME": key.kafka_username, "KAFKA_PASSWORD": key.kafka_password}
        expected["KAFKA_BOOTSTRAP_SERVERS"] = mine.get("KAFKA_BOOTSTRAP_SERVERS")
        assert mine["KAFKA_BOOTSTRAP_SERVERS"]
    assert mine == expected


def assert_kafka_properties(record: dict[str, object], key: Key) -> None:
    properties = record["kafka_properties"]
    assert isinstance(properties, str)
    jaas = (
        "org.apache.kafka.common.security.plain.PlainLoginModule required "
        f'username="{key.kafka_username}" password="{key.kafka_password}";'
    )
    assert properties.splitlines() == [
        f"bootstrap.servers={record['kafka_bootstrap_servers']}",
        "security.protocol=SASL_SSL",
        "sasl.mechanism=PLAIN",
        f"sasl.jaas.config={jaas}",
    ]


def test_a_mixed_manifest_converges_and_a_rerun_writes_nothing(
    tenant: World, tmp_path: Path, write_manifest: WriteManifest
) -> None:
    write_manifest("orders.yaml", MIXED)
    first = apply(tenant, tmp_path)
    assert "Applied: 5 created, 0 replaced, 0 deleted, 0 unchanged, 0 failed" in human_text(
        first.stderr
    )

    keys = only_keys(tenant)
    assert {name: key.status for name, key in keys.items()} == dict.fromkeys(KEYS, "active")
    (admin,) = tenant.credentials()
    assert owner_key(admin.description) == "orders/admin"
    # Each key has exactly the accesses its manifest entry asks for.
    assert [bool(keys[k].api_client_id) for k in KEYS] == [True, True, False, True]
    assert [bool(keys[k].kafka_username) for k in KEYS] == [False, True, True, False]
    assert keys["orders/stream"].acls == {
        ("TOPIC", "orders.", "PREFIXED", "READ"),
        ("TOPIC", "orders.", "PREFIXED", "DESCRIBE"),
        ("GROUP", "orders-reader", "LITERAL", "READ"),
    }
    assert keys["orders/agent"].tool_profile == "read-only"
    # Two keys asking for Kafka access get two Kafka users.
    assert keys["orders/stream"].kafka_username != keys["orders/kafka-only"].kafka_username

    env = dotenv_values(tmp_path / "secrets.env")
    admin_file = file_record(tmp_path, "orders/admin")
    assert (admin_file["client_id"], admin_file["secret"]) == (admin.client_id, admin.secret)
    assert "project_key_id" not in admin_file
    assert (env["STREAMKAP_ORDERS_ADMIN_CLIENT_ID"], env["STREAMKAP_ORDERS_ADMIN_SECRET"]) == (
        admin.client_id,
        admin.secret,
    )
    for name, key in keys.items():
        assert_record_holds(file_record(tmp_path, name), key)
        assert_env_holds(env, name.split("/")[1], key)
    assert_kafka_properties(file_record(tmp_path, "orders/stream"), keys["orders/stream"])
    assert "kafka_properties" not in file_record(tmp_path, "orders/api")

    writes = tenant.writes()
    assert len(writes) == 5  # one create each: no retry, no undo
    second = apply(tenant, tmp_path)
    assert tenant.writes() == writes
    assert "0 created, 0 replaced, 0 deleted, 5 unchanged, 0 failed" in human_text(second.stderr)
    assert only_keys(tenant) == keys


def test_vault_holds_what_the_file_sink_holds(
    tmp_path: Path, write_manifest: WriteManifest, vault: ServedVault
) -> None:
    manifest = (
        "version: 1\n"
        "defaults: {sinks: [vault, files]}\n"
        "sinks:\n"
        f"  vault: {{type: vault, address: '{vault.url}', mount: secret, prefix: streamkap}}\n"
        "  files: {type: file, path: ./secrets}\n" + CREDENTIALS
    )
    write_manifest("orders.yaml", manifest)
    with served() as sim:
        sim.state.project_keys.activation_delay = 0
        env = sim.env(**vault.env())
        first = run_cli("apply", "manifests", cwd=tmp_path, env=env)
        assert first.returncode == 0, first.stderr
        keys = {owner_key(record.description): record for record in sim.state.project_keys.live()}
        assert set(keys) == set(KEYS)
        for name in KEYS:
            in_vault = vault.read(f"streamkap/{name}")
            assert in_vault == file_record(tmp_path, name)
            assert in_vault["project_key_id"] == keys[name].id
        stream = vault.read("streamkap/orders/stream")
        assert (stream["secret"], stream["kafka_password"]) == (
            keys["orders/stream"].api_secret,
            keys["orders/stream"].kafka_password,
        )
        assert len(stream["kafka_properties"].splitlines()) == 4
        assert "secret" not in vault.read("streamkap/orders/kafka-only")

        writes = sim.state.write_calls("/project-keys")
        second = run_cli("apply", "manifests", cwd=tmp_path, env=env)
        assert second.returncode == 0, second.stderr
        assert sim.state.write_calls("/project-keys") == writes
        assert "0 created, 0 replaced, 0 deleted, 5 unchanged" in human_text(second.stderr)
