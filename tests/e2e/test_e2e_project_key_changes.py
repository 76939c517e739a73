"""Issue 20, "Done when" item 2, end to end through the real CLI against servers on real sockets:
what each change to a project key does on the API (PATCH of the same key, or a replacement),
rotation with grace, retirement that waits for consumers (`grace_max`), prune through a failed
deletion, and keys without the marker left alone."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from provisioner.simulator import (
    ADMIN_CLIENT_ID,
    ADMIN_SECRET,
    FaultConfig,
    ProjectKeyRecord,
    SimulatorState,
)
from tests.conftest import WriteManifest
from tests.support.project_key_worlds import (
    Key,
    SimulatorWorld,
    World,
    admin_client,
    login_works,
    marked,
    world,
)
from tests.support.served import REPO, Served, human_text, run_cli

HEADER = """\
version: 1
defaults: {kind: project-key, sinks: [files, dotenv]}
sinks:
  files: {type: file, path: ./secrets}
  dotenv: {type: env, path: ./secrets.env}
services:
  - name: orders
    credentials:
"""
STREAM_ACL = "- {topic: orders, operations: [read]}"


def manifest(*credentials: str) -> str:
    """HEADER, then each credential: its YAML lines, the first starting with `- name:`."""
    lines = [HEADER]
    for credential in credentials:
        lines += [f"      {line}\n" for line in credential.strip("\n").splitlines()]
    return "".join(lines)


def stream(acls: str = STREAM_ACL, *extra: str) -> str:
    """orders/stream: API and Kafka access."""
    return "\n".join(
        ["- name: stream", "  roles: [Read Only]", "  kafka:", f"    acls: [{acls[2:]}]", *extra]
    )


def parametrized_tenant(request: pytest.FixtureRequest) -> Iterator[World]:
    with world(request.param) as served_world:
        yield served_world


tenant = pytest.fixture(params=["simulator", "fake"])(parametrized_tenant)


@pytest.fixture
def sim_world() -> Iterator[SimulatorWorld]:
    with world("simulator") as served_world:
        assert isinstance(served_world, SimulatorWorld)
        yield served_world


def run(
    tenant: World, cwd: Path, command: str = "apply", *extra: str
) -> subprocess.CompletedProcess[str]:
    result = run_cli(command, "manifests", *extra, cwd=cwd, env=tenant.env())
    assert result.returncode == 0, result.stderr
    return result


def the_key(tenant: World, name: str = "orders/stream") -> Key:
    (key,) = marked(tenant)[name]
    return key


def record(cwd: Path, name: str = "stream") -> dict[str, object]:
    document = json.loads((cwd / "secrets" / "orders" / f"{name}.json").read_text())
    assert isinstance(document, dict)
    return document


def writes_since(tenant: World, before: int) -> list[tuple[str, str]]:
    return tenant.writes()[before:]


def test_an_acl_change_is_a_patch_of_the_same_key(
    tenant: World, tmp_path: Path, write_manifest: WriteManifest
) -> None:
    write_manifest("orders.yaml", manifest(stream()))
    run(tenant, tmp_path)
    before, start = the_key(tenant), len(tenant.writes())

    wider = (
        "- {topic: orders, operations: [read, describe]}, {group: orders-app, operations: [read]}"
    )
    write_manifest("orders.yaml", manifest(stream(wider)))
    plan = run(tenant, tmp_path, "plan")
    assert "drift:kafka" in human_text(plan.stderr)
    run(tenant, tmp_path)

    assert writes_since(tenant, start) == [("PATCH", f"/project-keys/{before.id}")]
    after = the_key(tenant)
    assert after.acls == {
        ("TOPIC", "orders", "LITERAL", "READ"),
        ("TOPIC", "orders", "LITERAL", "DESCRIBE"),
        ("GROUP", "orders-app", "LITERAL", "READ"),
    }
    # Same key, same user and secrets: consumers keep working without a restart.
    assert (after.id, after.kafka_username, after.kafka_password, after.api_secret) == (
        before.id,
        before.kafka_username,
        before.kafka_password,
        before.api_secret,
    )
    assert record(tmp_path)["project_key_id"] == before.id


def test_added_kafka_access_is_a_patch_and_lands_beside_the_api_secret(
    tenant: World, tmp_path: Path, write_manifest: WriteManifest
) -> None:
    write_manifest("orders.yaml", manifest("- name: stream\n  roles: [Read Only]"))
    run(tenant, tmp_path)
    before, start = the_key(tenant), len(tenant.writes())
    assert before.kafka_username is None
    assert "kafka_username" not in record(tmp_path)

    write_manifest("orders.yaml", manifest(stream()))
    run(tenant, tmp_path)

    assert writes_since(tenant, start) == [("PATCH", f"/project-keys/{before.id}")]
    after = the_key(tenant)
    assert after.id == before.id
    assert after.kafka_username is not None
    assert after.kafka_password is not None
    stored = record(tmp_path)
    assert stored["project_key_id"] == before.id
    # The API secret that stayed, and the new Kafka login beside it.
    assert (stored["client_id"], stored["secret"]) == (before.api_client_id, before.api_secret)
    assert (stored["kafka_username"], stored["kafka_password"]) == (
        after.kafka_username,
        after.kafka_password,
    )
    env = (tmp_path / "secrets.env").read_text()
    assert f"STREAMKAP_ORDERS_STREAM_KAFKA_PASSWORD='{after.kafka_password}'" in env
    assert f"STREAMKAP_ORDERS_STREAM_SECRET='{before.api_secret}'" in env
    second = run(tenant, tmp_path)
    assert "0 created, 0 replaced, 0 deleted, 1 unchanged" in human_text(second.stderr)


def test_roles_becoming_permissions_replace_the_key(
    tenant: World, tmp_path: Path, write_manifest: WriteManifest
) -> None:
    write_manifest("orders.yaml", manifest("- name: api\n  roles: [Read Only]"))
    run(tenant, tmp_path)
    before, start = the_key(tenant, "orders/api"), len(tenant.writes())

    # Fine-grained permissions cannot be set by a PATCH: only a new key has them.
    write_manifest("orders.yaml", manifest("- name: api\n  permissions: [perm-a]"))
    result = run(tenant, tmp_path)

    after = the_key(tenant, "orders/api")  # the old one is gone: grace 0s
    assert after.id != before.id
    assert after.api_client_id != before.api_client_id
    assert writes_since(tenant, start) == [
        ("POST", "/project-keys"),
        ("DELETE", f"/project-keys/{before.id}"),
    ]
    assert record(tmp_path, "api")["project_key_id"] == after.id
    assert record(tmp_path, "api")["secret"] == after.api_secret
    assert "1 replaced" in human_text(result.stderr)


def test_one_permission_set_becoming_another_replaces_the_key(
    sim_world: SimulatorWorld, tmp_path: Path, write_manifest: WriteManifest
) -> None:
    write_manifest("orders.yaml", manifest("- name: api\n  permissions: [perm-a]"))
    run(sim_world, tmp_path)
    before = the_key(sim_world, "orders/api")
    write_manifest("orders.yaml", manifest("- name: api\n  permissions: [perm-b]"))
    result = run(sim_world, tmp_path)
    # The API lists no permissions of a key: those the sinks' record says it was made with count.
    assert "drift:permissions" in human_text(result.stderr)
    assert the_key(sim_world, "orders/api").id != before.id
    assert record(tmp_path, "api")["permission_ids"] == ["perm-b"]


def test_a_rotation_leaves_old_and_new_side_by_side_with_different_kafka_users(
    tenant: World, tmp_path: Path, write_manifest: WriteManifest
) -> None:
    write_manifest("orders.yaml", manifest(stream(STREAM_ACL, "  grace: 1h")))
    run(tenant, tmp_path)
    old = the_key(tenant)

    rotated = run(tenant, tmp_path, "apply", "--replace", "orders/stream")
    assert "1 replaced" in human_text(rotated.stderr)

    keys = {key.id: key for key in marked(tenant)["orders/stream"]}
    assert len(keys) == 2
    assert old.id in keys
    (new,) = (key for key in keys.values() if key.id != old.id)
    assert {key.status for key in keys.values()} == {"active"}
    assert old.kafka_username != new.kafka_username
    assert old.kafka_password != new.kafka_password
    assert record(tmp_path)["project_key_id"] == new.id
    assert record(tmp_path)["kafka_username"] == new.kafka_username
    # Both API logins still work: consumers of the old one have the grace to move.
    for key in (old, new):
        assert key.api_client_id is not None
        assert key.api_secret is not None
        assert login_works(tenant.url, key.api_client_id, key.api_secret)
    again = run(tenant, tmp_path, "plan")
    assert "in-grace" in human_text(again.stderr)


# grace_max: the simulator only (the fake's keys cannot be aged from outside the fake) ---------

GRACEFUL = stream(STREAM_ACL, "  grace: 1h", "  grace_max: 1d")


def rotated(sim: SimulatorWorld, cwd: Path, write_manifest: WriteManifest) -> tuple[Key, Key]:
    """orders/stream made, then replaced with `--replace`: (old, new), both live in grace."""
    write_manifest("orders.yaml", manifest(GRACEFUL))
    run(sim, cwd)
    old = the_key(sim)
    run(sim, cwd, "apply", "--replace", "orders/stream")
    (new,) = (key for key in marked(sim)["orders/stream"] if key.id != old.id)
    return old, new


def time_passes(sim: SimulatorWorld, by: timedelta) -> None:
    """Every key's history moves back by `by` (creation and last use), as if `by` had passed."""

    def earlier(key: ProjectKeyRecord) -> ProjectKeyRecord:
        used = None if key.last_used_at is None else key.last_used_at - by
        return dataclasses.replace(key, created_at=key.created_at - by, last_used_at=used)

    store = sim.served.state.project_keys
    for key in store.live():
        store.update(key.id, earlier)


def metric(path: Path, name: str) -> float:
    found = re.search(rf"^{name} (\S+)$", path.read_text(), re.MULTILINE)
    assert found is not None, path.read_text()
    return float(found.group(1))


def test_an_old_key_still_used_is_kept_past_grace_until_grace_max(
    sim_world: SimulatorWorld, tmp_path: Path, write_manifest: WriteManifest
) -> None:
    old, new = rotated(sim_world, tmp_path, write_manifest)
    time_passes(sim_world, timedelta(hours=2))  # past grace (1h)
    # A consumer that never restarted logs in with the old key after the new one was made.
    assert old.api_client_id is not None
    assert old.api_secret is not None
    assert login_works(sim_world.url, old.api_client_id, old.api_secret)

    plan = run(sim_world, tmp_path, "plan")
    assert re.search(rf"orders/stream \({old.id}\): in-use", human_text(plan.stderr))
    metrics = tmp_path / "provisioner.prom"
    kept = run(sim_world, tmp_path, "apply", "--metrics-file", str(metrics))
    assert "credential.in_use_past_grace" in kept.stderr
    assert metric(metrics, "provisioner_credentials_in_use_past_grace") == 1
    assert {key.id for key in marked(sim_world)["orders/stream"]} == {old.id, new.id}

    time_passes(sim_world, timedelta(days=1))  # past grace_max: deleted, used or not
    assert login_works(sim_world.url, old.api_client_id, old.api_secret)  # used a moment ago
    gone = run(sim_world, tmp_path, "apply", "--metrics-file", str(metrics))
    assert "1 deleted" in human_text(gone.stderr)
    assert the_key(sim_world).id == new.id
    assert metric(metrics, "provisioner_credentials_in_use_past_grace") == 0
    assert record(tmp_path)["project_key_id"] == new.id


def test_an_old_key_kept_for_its_use_goes_once_unused_for_a_grace(
    sim_world: SimulatorWorld, tmp_path: Path, write_manifest: WriteManifest
) -> None:
    old, new = rotated(sim_world, tmp_path, write_manifest)
    time_passes(sim_world, timedelta(hours=2))
    assert old.api_client_id is not None
    assert old.api_secret is not None
    assert login_works(sim_world.url, old.api_client_id, old.api_secret)
    assert "in-use" in human_text(run(sim_world, tmp_path).stderr)
    # Its last consumer moved: two hours on, it has not been used for more than a grace (1h).
    time_passes(sim_world, timedelta(hours=2))
    gone = run(sim_world, tmp_path)
    assert "1 deleted" in human_text(gone.stderr)
    assert the_key(sim_world).id == new.id


def test_an_old_key_unused_since_the_new_one_goes_at_grace(
    sim_world: SimulatorWorld, tmp_path: Path, write_manifest: WriteManifest
) -> None:
    write_manifest("orders.yaml", manifest(GRACEFUL))
    run(sim_world, tmp_path)
    old = the_key(sim_world)
    # Used, but only before the replacement: its consumers have all moved since.
    assert old.api_client_id is not None
    assert old.api_secret is not None
    assert login_works(sim_world.url, old.api_client_id, old.api_secret)
    time_passes(sim_world, timedelta(hours=3))
    run(sim_world, tmp_path, "apply", "--replace", "orders/stream")
    (new,) = (key for key in marked(sim_world)["orders/stream"] if key.id != old.id)

    kept = run(sim_world, tmp_path, "plan")
    assert "in-grace" in human_text(kept.stderr)  # within grace: kept, used or not
    time_passes(sim_world, timedelta(hours=2))
    gone = run(sim_world, tmp_path)
    assert "1 deleted" in human_text(gone.stderr)
    assert "in_use_past_grace" not in gone.stderr
    assert the_key(sim_world).id == new.id


def test_an_orphan_is_pruned_even_when_its_delete_fails_once(
    sim_world: SimulatorWorld, tmp_path: Path, write_manifest: WriteManifest
) -> None:
    both = manifest(stream(), "- name: api\n  roles: [Read Only]")
    write_manifest("orders.yaml", both)
    run(sim_world, tmp_path)
    orphan = the_key(sim_world, "orders/api")
    time_passes(sim_world, timedelta(days=2))  # long delivered: not a killed run's leftover
    write_manifest("orders.yaml", manifest(stream()))
    state = sim_world.served.state

    state.update_faults(project_key_delete_failed_rate=1)
    run(sim_world, tmp_path, "apply", "--prune")
    assert the_key(sim_world, "orders/api").status == "delete_failed"

    state.faults = FaultConfig()
    plan = run(sim_world, tmp_path, "plan", "--prune")
    assert re.search(rf"orders/api \({orphan.id}\): delete-failed", human_text(plan.stderr))
    start = len(sim_world.writes())
    again = run(sim_world, tmp_path, "apply", "--prune")
    assert writes_since(sim_world, start) == [("DELETE", f"/project-keys/{orphan.id}")]
    assert "1 deleted" in human_text(again.stderr)
    assert "orders/api" not in marked(sim_world)
    assert the_key(sim_world).status == "active"  # the desired one untouched


def test_a_key_without_the_marker_is_never_touched(
    tenant: World, tmp_path: Path, write_manifest: WriteManifest
) -> None:
    body = {"name": "orders/stream", "description": "made by hand", "role_ids": []}
    with admin_client(tenant) as client:
        role = client.get("/auth/roles").json()[0]["id"]
        answer = client.post("/project-keys", json={**body, "role_ids": [role]})
        assert answer.status_code in (200, 201), answer.text
    (theirs,) = tenant.project_keys()
    write_manifest("orders.yaml", manifest(stream()))
    start = len(tenant.writes())

    run(tenant, tmp_path, "apply", "--prune")
    run(tenant, tmp_path, "apply", "--prune", "--replace", "orders/stream")

    assert not [path for _, path in writes_since(tenant, start) if theirs.id in path]
    assert theirs in tenant.project_keys()
    assert len(marked(tenant)["orders/stream"]) == 1  # ours, beside theirs of the same name


def test_a_prune_against_provisioner_simulate_with_failing_deletes(
    tmp_path: Path, write_manifest: WriteManifest
) -> None:
    """The same through `provisioner simulate --project-key-delete-failed-rate 1`: the orphan
    ends `delete_failed`; each later run shows it and deletes it again."""
    flags = ("--slow-activation", "0", "--project-key-delete-failed-rate", "1")
    command = [sys.executable, "-m", "provisioner", "simulate", "--port", "0", *flags]
    plain = {
        k: v for k, v in os.environ.items() if not k.startswith(("STREAMKAP_", "PROVISIONER_"))
    }
    with subprocess.Popen(
        command,
        cwd=tmp_path,
        env={**plain, "PYTHONPATH": str(REPO)},
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            assert process.stderr is not None
            url = process.stderr.readline().split("serving on ")[1].split()[0]
            env = Served(url, SimulatorState()).env()

            def cli(*args: str) -> str:
                result = run_cli(*args, "manifests", cwd=tmp_path, env=env)
                assert result.returncode == 0, result.stderr
                return human_text(result.stderr)

            def orphan_status() -> str | None:
                """Its status once its deletion has ended (`simulate` deletes in 1 s)."""
                deadline = time.monotonic() + 20
                while (status := listed_status()) == "deleting" and time.monotonic() < deadline:
                    time.sleep(0.05)
                return status

            def listed_status() -> str | None:
                with httpx.Client(base_url=url, timeout=10) as client:
                    body = {"client_id": ADMIN_CLIENT_ID, "secret": ADMIN_SECRET}
                    token = client.post("/auth/access-token", json=body).json()["accessToken"]
                    headers = {"Authorization": f"Bearer {token}"}
                    listed = client.get("/project-keys", headers=headers).json()
                found = [key["status"] for key in listed if key["name"] == "orders/api"]
                return found[0] if found else None

            write_manifest("orders.yaml", manifest(stream(), "- name: api\n  roles: [Read Only]"))
            cli("apply")
            write_manifest("orders.yaml", manifest(stream()))
            assert "1 deleted" in cli("apply", "--prune")
            assert orphan_status() == "delete_failed"
            assert re.search(r"orders/api \(pk_\w+\): delete-failed", cli("plan", "--prune"))
            assert "1 deleted" in cli("apply", "--prune")  # asked again; the fault holds
            assert orphan_status() == "delete_failed"
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=10) == 0
        finally:
            process.kill()
