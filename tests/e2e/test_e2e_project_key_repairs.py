"""Project keys left half done or half described, repaired by the next `apply` (a real CLI
subprocess against the simulator and the independent fake, both on real sockets): a run killed
after its PATCH added Kafka access, a kind changed back, permissions a sink does not keep."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from provisioner.kafka_usernames import derive
from tests.conftest import WriteManifest
from tests.support.project_key_worlds import World, admin_client, marked, world
from tests.support.served import human_text, run_cli

MANIFEST = """\
version: 1
sinks:
  files: {{type: file, path: ./secrets}}
  dotenv: {{type: env, path: ./secrets.env}}
services:
  - name: orders
    credentials:
      - name: api
{kind}        {access}
        sinks: [{sinks}]
{extra}"""


def manifest(
    *,
    kind: str = "project-key",
    access: str = "roles: [Read Only]",
    sinks: str = "files",
    extra: str = "",
) -> str:
    shown = f"        kind: {kind}\n" if kind else ""
    return MANIFEST.format(kind=shown, access=access, sinks=sinks, extra=extra)


KAFKA = "        kafka: {acls: [{topic: orders, operations: [read]}]}\n"


@pytest.fixture(params=["simulator", "fake"])
def tenant(request: pytest.FixtureRequest) -> Iterator[World]:
    with world(request.param) as served_world:
        yield served_world


def apply(tenant: World, cwd: Path) -> str:
    result = run_cli("apply", "manifests", cwd=cwd, env=tenant.env())
    assert result.returncode == 0, result.stderr
    return human_text(result.stderr)


def held(cwd: Path) -> dict[str, object]:
    document = json.loads((cwd / "secrets" / "orders" / "api.json").read_text())
    assert isinstance(document, dict)
    return document


def test_a_run_killed_after_its_patch_added_kafka_is_repaired(
    tenant: World, tmp_path: Path, write_manifest: WriteManifest
) -> None:
    """The PATCH added a Kafka user, the run died before any sink got its password: the sinks
    hold the key's id but not its Kafka access. The next run replaces the key (the password is
    lost), and then nothing more."""
    write_manifest("orders.yaml", manifest())
    apply(tenant, tmp_path)
    ((key,),) = marked(tenant).values()
    kafka_config = {
        "username": derive("orders/api", None, "kill"),  # as the provisioner names it
        "password": "a-password-no-sink-got-1234",
        "kafka_acls": [
            {
                "topic_name": "orders",
                "operation": "READ",
                "resource_pattern_type": "LITERAL",
                "resource": "TOPIC",
            }
        ],
    }
    with admin_client(tenant) as admin:
        answer = admin.patch(f"/project-keys/{key.id}", json={"kafka_config": kafka_config})
        assert answer.status_code == 200, answer.text
    write_manifest("orders.yaml", manifest(extra=KAFKA))

    repaired = apply(tenant, tmp_path)
    assert "1 replaced" in repaired
    ((new,),) = marked(tenant).values()
    assert new.id != key.id
    assert held(tmp_path)["project_key_id"] == new.id
    assert held(tmp_path)["kafka_password"] == new.kafka_password
    assert "0 created, 0 replaced, 0 deleted, 1 unchanged" in apply(tenant, tmp_path)


def test_a_kind_changed_back_retires_the_project_key(
    tenant: World, tmp_path: Path, write_manifest: WriteManifest
) -> None:
    write_manifest("orders.yaml", manifest())
    apply(tenant, tmp_path)
    ((key,),) = marked(tenant).values()
    write_manifest("orders.yaml", manifest(kind=""))  # a client credential again
    made = apply(tenant, tmp_path)
    assert "1 created" in made
    assert [k.id for k in marked(tenant)["orders/api"]] == [key.id]  # left live until delivered
    retired = apply(tenant, tmp_path)
    assert "1 deleted" in retired
    assert "orders/api" not in marked(tenant)
    assert "client_id" in held(tmp_path)
    assert "project_key_id" not in held(tmp_path)


def test_a_key_with_permissions_in_a_sink_that_keeps_none_converges(
    tenant: World, tmp_path: Path, write_manifest: WriteManifest
) -> None:
    """The env sink keeps no permission ids: it says nothing about them (not "none")."""
    write_manifest("orders.yaml", manifest(access="permissions: [perm-a]", sinks="dotenv"))
    apply(tenant, tmp_path)
    before = tenant.writes()
    assert "0 created, 0 replaced, 0 deleted, 1 unchanged" in apply(tenant, tmp_path)
    assert tenant.writes() == before
