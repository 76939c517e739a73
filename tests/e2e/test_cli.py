"""The command line itself: schema, validate, simulate, usage errors (real subprocesses)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.support.served import REPO, run_cli


def plain_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STREAMKAP_", "PROVISIONER_"))}
    env["PYTHONPATH"] = str(REPO)
    return env


def test_schema_prints_json_schema_on_stdout(tmp_path: Path) -> None:
    result = run_cli("schema", cwd=tmp_path, env=plain_env())
    assert result.returncode == 0
    assert json.loads(result.stdout)["title"] == "streamkap-provisioner manifest"


def test_validate_checks_the_example_manifests_without_network(tmp_path: Path) -> None:
    env = plain_env() | {"STREAMKAP_HOST": "http://127.0.0.1:9"}  # nothing listens there
    env["PROVISIONER_LOG_FORMAT"] = "console"
    result = run_cli("validate", REPO / "manifests", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stderr.startswith("OK: 8 credentials for 5 services in 4 files")


def test_missing_api_credentials_are_a_configuration_error(tmp_path: Path) -> None:
    result = run_cli("plan", REPO / "manifests", cwd=tmp_path, env=plain_env())
    assert result.returncode == 2
    assert "set STREAMKAP_CLIENT_ID and STREAMKAP_SECRET" in result.stderr


def test_bad_flags_and_settings_exit_2(tmp_path: Path) -> None:
    bad_flag = run_cli("apply", "--nope", "x", cwd=tmp_path, env=plain_env())
    assert bad_flag.returncode == 2
    bad_env = plain_env() | {"PROVISIONER_CONCURRENCY": "zero"}
    bad_setting = run_cli("plan", REPO / "manifests", cwd=tmp_path, env=bad_env)
    assert bad_setting.returncode == 2
    assert "invalid configuration" in bad_setting.stderr
    # `validate` reads only the settings it uses (issue 23): how to log, the manifest limits.
    bad_env = plain_env() | {"PROVISIONER_LOG_LEVEL": "loud"}
    bad_setting = run_cli("validate", REPO / "manifests", cwd=tmp_path, env=bad_env)
    assert bad_setting.returncode == 2
    assert "invalid configuration: PROVISIONER_LOG_LEVEL" in bad_setting.stderr
    bad_sink = run_cli(
        "validate", REPO / "manifests", "--sink", "ftp:x", cwd=tmp_path, env=plain_env()
    )
    assert bad_sink.returncode == 2


def test_simulate_serves_until_sigterm(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "provisioner", "simulate", "--port", "0"]
    with subprocess.Popen(
        command, cwd=tmp_path, env=plain_env(), stderr=subprocess.PIPE, text=True
    ) as process:
        try:
            assert process.stderr is not None
            url = process.stderr.readline().split("serving on ")[1].split()[0]
            login = {"client_id": "sim-admin", "secret": "sim-admin-secret"}
            assert httpx.post(f"{url}/auth/access-token", json=login).status_code == 200
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=10) == 0
            assert "simulator: stopped" in process.stderr.read()
        finally:
            process.kill()


def test_a_password_in_a_sink_uri_is_never_echoed(tmp_path: Path) -> None:
    uri = "vault:https://user:hunter2@vault.example:8200/secret"
    result = run_cli("validate", REPO / "manifests", "--sink", uri, cwd=tmp_path, env=plain_env())
    assert result.returncode == 2
    assert "--sink 'vault:https://vault.example:8200/secret'" in result.stderr
    assert "hunter2" not in result.stderr


def test_a_host_without_a_scheme_is_a_configuration_error(tmp_path: Path) -> None:
    env = plain_env() | {"STREAMKAP_HOST": "api.streamkap.com"}
    result = run_cli("plan", REPO / "manifests", cwd=tmp_path, env=env)
    assert result.returncode == 2
    assert "expected an http(s):// URL" in result.stderr
