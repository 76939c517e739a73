"""`provisioner simulate`'s project-key faults, seen over HTTP on the port it serves (issue 20)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.served import REPO

LOGIN = {"client_id": "sim-admin", "secret": "sim-admin-secret"}
#: Far beyond the simulator's default activation and deletion delays (1 s each).
DEADLINE = 20.0


def plain_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STREAMKAP_", "PROVISIONER_"))}
    env["PYTHONPATH"] = str(REPO)
    return env


@contextmanager
def simulating(tmp_path: Path, *flags: str) -> Iterator[httpx.Client]:
    """`provisioner simulate --port 0 FLAGS` in a subprocess, and a client logged in to it."""
    command = [sys.executable, "-m", "provisioner", "simulate", "--port", "0", *flags]
    with subprocess.Popen(
        command, cwd=tmp_path, env=plain_env(), stderr=subprocess.PIPE, text=True
    ) as process:
        try:
            assert process.stderr is not None
            url = process.stderr.readline().split("serving on ")[1].split()[0]
            token = httpx.post(f"{url}/auth/access-token", json=LOGIN).json()["accessToken"]
            headers = {"Authorization": f"Bearer {token}"}
            with httpx.Client(base_url=url, headers=headers) as client:
                yield client
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=10) == 0
        finally:
            process.kill()


def create(client: httpx.Client, body: dict[str, Any]) -> str:
    answer = client.post("/project-keys", json=body)
    assert answer.status_code in (200, 201), answer.text
    key_id = answer.json()["project_key_id"]
    assert isinstance(key_id, str)
    return key_id


def status(client: httpx.Client, key_id: str) -> str | None:
    answer = client.get(f"/project-keys/{key_id}")
    if answer.status_code == 404:
        return None
    assert answer.status_code == 200, answer.text
    value = answer.json()["status"]
    assert isinstance(value, str)
    return value


def settled(client: httpx.Client, key_id: str, passing: str) -> str | None:
    """The key's status once it is no longer `passing` (None: gone)."""
    deadline = time.monotonic() + DEADLINE
    while (now := status(client, key_id)) == passing:
        assert time.monotonic() < deadline, f"{key_id} stayed {passing}"
        time.sleep(0.05)
    return now


def kafka_key(name: str, username: str) -> dict[str, Any]:
    acl = {
        "topic_name": "orders",
        "operation": "READ",
        "resource_pattern_type": "LITERAL",
        "resource": "TOPIC",
    }
    kafka = {
        "username": username,
        "password": "kafka-password-0123",
        "kafka_acls": [acl],
        "is_create_schema_registry": False,
    }
    return {"name": name, "kafka_config": kafka}


def test_never_activating_and_failing_deletions(tmp_path: Path) -> None:
    flags = ("--slow-activation", "never", "--project-key-delete-failed-rate", "1")
    with simulating(tmp_path, *flags) as client:
        kafka = create(client, kafka_key("svc/kafka", "svc-kafka"))
        role = client.get("/auth/roles").json()[0]["id"]
        api_only = create(client, {"name": "svc/api", "role_ids": [role]})
        assert status(client, api_only) == "active"
        assert client.delete(f"/project-keys/{api_only}").status_code in (200, 202)
        # Without the rate the key would be gone once `deleting` ends.
        assert settled(client, api_only, "deleting") == "delete_failed"
        # That took the deletion delay, longer than the default activation delay: still creating.
        assert status(client, kafka) == "creating"


def test_a_slow_activation_of_zero_activates_at_once(tmp_path: Path) -> None:
    with simulating(tmp_path, "--slow-activation", "0") as client:
        # Without the flag the key would be `creating` for the default second.
        key_id = create(client, kafka_key("svc/kafka", "svc-kafka"))
        assert status(client, key_id) == "active"
        assert client.delete(f"/project-keys/{key_id}").status_code in (200, 202)
        assert settled(client, key_id, "deleting") is None  # no failure rate: gone


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--slow-activation", "-1"),
        ("--project-key-delete-failed-rate", "1.5"),
    ],
)
def test_bad_fault_values_are_usage_errors(tmp_path: Path, flag: str, value: str) -> None:
    command = [sys.executable, "-m", "provisioner", "simulate", "--port", "0", flag, value]
    result = subprocess.run(
        command, cwd=tmp_path, env=plain_env(), capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert f"argument {flag}" in result.stderr
