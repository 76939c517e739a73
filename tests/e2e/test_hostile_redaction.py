"""Issue 14, point 7: secrets are redacted by value, whatever a server echoes back at us."""

from __future__ import annotations

import io
import json
from pathlib import Path

import structlog
from pydantic import SecretStr

from provisioner.errors import ApiError
from provisioner.logs import configure_logging, forget_secrets, register_secret
from provisioner.simulator import SimulatorState
from tests.support.hostile import Answer, Handler, Request, hostile_server, json_answer, reflect
from tests.support.served import Served, run_cli, served

LOGIN_SECRET = "admin-login-secret-4b1d9e77"
ACCESS_TOKEN = "access-token-5c2e8f0a91d3"
REFRESH_TOKEN = "refresh-token-77aa01bc3e"
VAULT_TOKEN = "hvs.vault-token-0e9d8c7b6a"

MANIFEST = """\
version: 1
sinks:
  local: {type: file, path: ./secrets}
  vault: {type: vault, address: %s, mount: secret}
services:
  - name: api
    credentials:
      - name: c
        roles: [admin]
        sinks: [%s]
"""


def env_for(url: str, **extra: str) -> dict[str, str]:
    env = Served(url, SimulatorState()).env(
        STREAMKAP_SECRET=LOGIN_SECRET, PROVISIONER_MAX_ATTEMPTS="2", VAULT_TOKEN=VAULT_TOKEN
    )
    env.update(extra)
    return env


def write_manifest(
    tmp_path: Path, vault_url: str = "http://127.0.0.1:9", sink: str = "local"
) -> Path:
    path = tmp_path / "m.yaml"
    path.write_text(MANIFEST % (vault_url, sink))
    return path


def test_a_401_that_repeats_the_login_body_does_not_print_the_login_secret(
    tmp_path: Path,
) -> None:
    with hostile_server(reflect(401)) as api:
        done = run_cli("apply", write_manifest(tmp_path), cwd=tmp_path, env=env_for(api.url))
    assert done.returncode == 2, done.stderr
    assert any(LOGIN_SECRET.encode() in r.body for r in api.requests)  # it was echoed
    assert "[redacted]" in done.stderr
    assert LOGIN_SECRET not in done.stderr + done.stdout


def login_then_reflect(status: int) -> Handler:
    def handle(request: Request) -> Answer:
        if request.path.startswith("/auth/access-token"):
            tokens = {"accessToken": ACCESS_TOKEN, "refreshToken": REFRESH_TOKEN, "expiresIn": 3600}
            return json_answer(200, tokens)
        return reflect(status)(request)

    return handle


def test_a_500_that_repeats_the_headers_does_not_log_the_bearer_token(tmp_path: Path) -> None:
    with hostile_server(login_then_reflect(500)) as api:
        done = run_cli("apply", write_manifest(tmp_path), cwd=tmp_path, env=env_for(api.url))
    assert done.returncode == 1, done.stderr
    assert "retry.scheduled" in done.stderr  # the retry path, which logs the error, was taken
    output = done.stderr + done.stdout
    for secret in (ACCESS_TOKEN, LOGIN_SECRET):
        assert secret not in output


def vault_echoing_writes(request: Request) -> Answer:
    """A Vault where nothing is stored yet and every write fails with a 502 echoing it."""
    if request.path.endswith("/auth/token/lookup-self"):  # the token is fine: writes are not
        return json_answer(200, {"data": {}})
    if request.method == "GET":
        return json_answer(404, {})
    if request.method == "POST":
        echo = [request.body.decode(), *(f"{k}: {v}" for k, v in request.headers.items())]
        return json_answer(502, {"errors": echo})
    return Answer(204)


def test_a_vault_502_that_echoes_the_write_keeps_the_new_secret_out_of_stderr_and_report(
    tmp_path: Path,
) -> None:
    report = tmp_path / "report.json"
    with served() as sim, hostile_server(vault_echoing_writes) as vault:
        manifest = write_manifest(tmp_path, vault.url, "vault")
        env = env_for(sim.url, STREAMKAP_SECRET=sim.env()["STREAMKAP_SECRET"])
        done = run_cli("apply", manifest, "--report", report, cwd=tmp_path, env=env)
    assert done.returncode == 1, done.stderr
    written = [json.loads(r.body)["data"]["secret"] for r in vault.requests if r.method == "POST"]
    assert written  # the client secret went to Vault and came back in the 502
    output = done.stderr + done.stdout + report.read_text()
    assert "HTTP 502" in output
    for secret in (*written, VAULT_TOKEN):
        assert secret not in output


def test_every_string_of_a_log_event_is_redacted_however_nested() -> None:
    stream = io.StringIO()
    configure_logging("info", "json", stream)
    register_secret(SecretStr("nested-secret-value-1"))
    try:
        structlog.get_logger().info(
            "x nested-secret-value-1",
            detail={"a": ["ok", ("nested-secret-value-1!",)]},
            error=str(ApiError("GET", "/p", 500, "echo: nested-secret-value-1")),
        )
    finally:
        forget_secrets()
    assert "nested-secret-value-1" not in stream.getvalue()
    assert stream.getvalue().count("[redacted]") == 3
