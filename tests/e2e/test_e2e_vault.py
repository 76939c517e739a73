"""End to end with Vault: the CLI in a subprocess, the simulator and the Vault stub on sockets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from provisioner.model import owner_key
from provisioner.simulator import FaultConfig
from tests.conftest import WriteManifest
from tests.support.served import REPO, Served, human_text, run_cli
from tests.support.vault_support import ServedVault, hvac_client, hvac_read

SERVICES = ["payments-api", "orders", "billing", "search"]
PER_SERVICE = 5  # 20 credentials


def manifest(vault_url: str) -> str:
    lines = [
        "version: 1",
        "defaults:",
        "  roles: [read_only]",
        "  sinks: [vault, files]",
        "sinks:",
        f"  vault: {{type: vault, address: '{vault_url}', mount: secret, prefix: streamkap}}",
        "  files: {type: file, path: ./secrets}",
        "services:",
    ]
    for service in SERVICES:
        lines += [f"  - name: {service}", "    credentials:"]
        lines += [f"      - name: cred-{index}" for index in range(PER_SERVICE)]
    return "\n".join(lines) + "\n"


def offline_env() -> dict[str, str]:
    """This environment without Streamkap, Vault or provisioner settings."""
    prefixes = ("STREAMKAP_", "PROVISIONER_", "VAULT_")
    env = {key: value for key, value in os.environ.items() if not key.startswith(prefixes)}
    return {**env, "PYTHONPATH": str(REPO), "PROVISIONER_MAX_ATTEMPTS": "2"}


@pytest.fixture
def workdir(tmp_path: Path, vault: ServedVault, write_manifest: WriteManifest) -> Path:
    write_manifest("services.yaml", manifest(vault.url))
    return tmp_path


def apply(
    sim: Served, vault: ServedVault, cwd: Path, *extra: str, **env: str
) -> subprocess.CompletedProcess[str]:
    # Two attempts per call keep the failure scenarios to a second or so of backoff.
    environment = sim.env(**{**vault.env(), "PROVISIONER_MAX_ATTEMPTS": "2", **env})
    return run_cli("apply", "manifests", *extra, cwd=cwd, env=environment)


def assert_converged(sim: Served, vault: ServedVault, workdir: Path) -> None:
    """Exactly one live credential per key, its secret in Vault (read by hvac) and in the file."""
    live = sim.state.live()
    keys = sorted(owner_key(record.description) or "" for record in live)
    assert keys == sorted(f"{s}/cred-{i}" for s in SERVICES for i in range(PER_SERVICE))
    for record in live:
        service, name = (owner_key(record.description) or "").split("/")
        in_vault = vault.read(f"streamkap/{service}/{name}")
        in_file = json.loads((workdir / "secrets" / service / f"{name}.json").read_text())
        assert in_vault == in_file
        assert (in_vault["client_id"], in_vault["secret"]) == (record.client_id, record.secret)


def test_twenty_credentials_reach_both_vault_and_files(
    sim: Served, vault: ServedVault, workdir: Path
) -> None:
    result = apply(sim, vault, workdir)
    assert result.returncode == 0, result.stderr
    assert_converged(sim, vault, workdir)
    assert vault.hvac().secrets.kv.v2.list_secrets("streamkap")["data"]["keys"] == sorted(
        f"{service}/" for service in SERVICES
    )


def test_a_second_apply_writes_nothing_anywhere(
    sim: Served, vault: ServedVault, workdir: Path
) -> None:
    assert apply(sim, vault, workdir).returncode == 0
    sim.state.reset_calls()
    vault.state.reset_calls()
    second = apply(sim, vault, workdir)
    assert second.returncode == 0, second.stderr
    assert sim.state.write_calls() == []
    assert {call.method for call in vault.state.calls()} == {"GET"}


def test_a_vault_sink_uri_is_the_default_sink(
    sim: Served, vault: ServedVault, tmp_path: Path
) -> None:
    (tmp_path / "m.yaml").write_text(
        "version: 1\nservices:\n  - name: orders\n    credentials:\n      - name: reader\n"
        "        roles: [Admin]\n"
    )
    uri = f"vault:{vault.url}/secret/from-uri"
    result = run_cli("apply", "m.yaml", "--sink", uri, cwd=tmp_path, env=sim.env(**vault.env()))
    assert result.returncode == 0, result.stderr
    (record,) = sim.state.live()
    assert vault.read("from-uri/orders/reader")["secret"] == record.secret


def test_with_vault_down_apply_exits_1_leaving_nothing_live_then_converges(
    sim: Served, vault: ServedVault, workdir: Path
) -> None:
    vault.state.faults = FaultConfig(fail_all=True)
    down = apply(sim, vault, workdir)
    assert down.returncode == 1, down.stderr
    assert "Vault is sealed" in down.stderr
    assert sim.state.live() == []
    vault.state.faults = FaultConfig()
    back = apply(sim, vault, workdir)
    assert back.returncode == 0, back.stderr
    assert_converged(sim, vault, workdir)


def test_when_vault_refuses_every_write_each_new_credential_is_undone(
    sim: Served, vault: ServedVault, workdir: Path
) -> None:
    vault.state.fail_writes = True
    failed = apply(sim, vault, workdir)
    assert failed.returncode == 1, failed.stderr
    assert "0 created, 0 replaced, 0 deleted, 0 unchanged, 20 failed" in failed.stderr
    creates = [call for call in sim.state.write_calls() if call.method == "POST"]
    assert len(creates) == 20  # created, then taken back: nobody could hold their secrets
    assert sim.state.live() == []
    assert list((workdir / "secrets").rglob("*.json")) == []  # the file copies were undone too
    vault.state.fail_writes = False
    back = apply(sim, vault, workdir)
    assert back.returncode == 0, back.stderr
    assert_converged(sim, vault, workdir)


def test_a_policy_on_the_wrong_path_fails_with_the_path_it_needs(
    sim: Served, vault: ServedVault, workdir: Path
) -> None:
    vault.state.add_token("app", {"secret/streamkap/*": ["create", "read", "update", "delete"]})
    result = apply(sim, vault, workdir, VAULT_TOKEN="app")
    assert result.returncode == 1
    assert 'on path "secret/data/streamkap/*"' in human_text(result.stderr)
    assert "Traceback" not in result.stderr
    assert sim.state.write_calls() == []


def test_missing_vault_token_is_a_usage_error(
    sim: Served, vault: ServedVault, workdir: Path
) -> None:
    env = sim.env(VAULT_ADDR=vault.url, HOME=str(workdir))  # no ~/.vault-token there either
    result = run_cli("apply", "manifests", cwd=workdir, env=env)
    assert result.returncode == 2
    assert "no Vault token" in result.stderr
    assert sim.state.calls() == []


def test_simulate_routes_vault_sinks_to_an_in_process_stub(tmp_path: Path) -> None:
    """The manifest's Vault address is never contacted: --simulate works offline."""
    (tmp_path / "m.yaml").write_text(manifest("https://vault.invalid:8200"))
    result = run_cli("apply", "m.yaml", "--simulate", cwd=tmp_path, env=offline_env())
    assert result.returncode == 0, result.stderr
    assert "20 created, 0 replaced, 0 deleted, 0 unchanged, 0 failed" in result.stderr


def test_the_simulate_command_also_serves_vault() -> None:
    command = [sys.executable, "-m", "provisioner", "simulate", "--port", "0", "--vault-port", "0"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=offline_env())
    try:
        assert process.stderr is not None
        # Each server announces its URL once it accepts connections.
        announced = [process.stderr.readline() for _ in range(2)]
        url = next(line for line in announced if line.startswith("vault:")).split()[3]
        hvac_client(url).secrets.kv.v2.create_or_update_secret("demo", {"k": "v"})
        assert hvac_read(url, "demo") == {"k": "v"}
    finally:
        process.terminate()
        _, rest = process.communicate(timeout=10)
    assert "Traceback" not in rest


# Logins (issue 15, point 12) ------------------------------------------------------------------

LOGIN_JWT = "eyJhbGciOiJSUzI1NiJ9.cli-sa-token-Do-Not-Print.sig"
LOGIN_SECRET_ID = "cli-secret-id-Do-Not-Print"


def login_manifest(vault_url: str, auth: str) -> str:
    return (
        "version: 1\n"
        "defaults: {roles: [read_only], sinks: [vault]}\n"
        "sinks:\n"
        f"  vault: {{type: vault, address: '{vault_url}', prefix: streamkap, auth: {auth}}}\n"
        "services:\n"
        "  - name: payments-api\n"
        "    credentials:\n"
        "      - name: ingest\n"
        "      - name: reporting\n"
    )


@pytest.fixture
def login_dir(tmp_path: Path, vault: ServedVault) -> Path:
    vault.state.add_kubernetes_role("streamkap-provisioner", LOGIN_JWT)
    vault.state.add_approle("cli-role-id", LOGIN_SECRET_ID, name="streamkap-provisioner")
    (tmp_path / "manifests").mkdir()
    (tmp_path / "jwt").write_text(LOGIN_JWT)
    (tmp_path / "secret-id").write_text(LOGIN_SECRET_ID)
    return tmp_path


K8S_AUTH = "{method: kubernetes, role: streamkap-provisioner, jwt_file: jwt}"
APPROLE_AUTH = "{method: approle, role_id: cli-role-id, secret_id_file: secret-id}"


@pytest.mark.parametrize("auth", [K8S_AUTH, APPROLE_AUTH], ids=["kubernetes", "approle"])
def test_apply_logs_in_without_a_vault_token(
    sim: Served, vault: ServedVault, login_dir: Path, auth: str
) -> None:
    (login_dir / "manifests" / "m.yaml").write_text(login_manifest(vault.url, auth))
    environment = sim.env(VAULT_ADDR=vault.url, PROVISIONER_MAX_ATTEMPTS="2")
    result = run_cli("apply", "manifests", cwd=login_dir, env=environment)
    assert result.returncode == 0, result.stderr
    held = {record.client_id for record in sim.state.live()}
    assert vault.read("streamkap/payments-api/ingest")["client_id"] in held
    logins = [c for c in vault.state.calls("POST") if c.path.endswith("/login")]
    assert [c.status for c in logins] == [200]
    for secret in (LOGIN_JWT, LOGIN_SECRET_ID, "hvs."):
        assert secret not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("auth", "expected"),
    [
        (
            "{method: kubernetes, role: nope, jwt_file: jwt}",
            "kubernetes login (mount 'kubernetes', role 'nope')",
        ),
        (
            "{method: kubernetes, role: streamkap-provisioner, jwt_file: other-jwt}",
            "kubernetes login (mount 'kubernetes', role 'streamkap-provisioner')",
        ),
        (
            "{method: approle, role_id: cli-role-id, secret_id_file: other-secret-id}",
            "approle login (mount 'approle', role_id 'cli-role-id')",
        ),
    ],
    ids=["wrong-role", "wrong-jwt", "wrong-secret-id"],
)
def test_a_refused_login_exits_2_naming_method_mount_and_role(
    sim: Served, vault: ServedVault, login_dir: Path, auth: str, expected: str
) -> None:
    wrong_jwt, wrong_secret_id = "forged.jwt-Do-Not-Print", "wrong-secret-id-Do-Not-Print"
    (login_dir / "other-jwt").write_text(wrong_jwt)
    (login_dir / "other-secret-id").write_text(wrong_secret_id)
    (login_dir / "manifests" / "m.yaml").write_text(login_manifest(vault.url, auth))
    environment = sim.env(VAULT_ADDR=vault.url, PROVISIONER_LOG_FORMAT="console")
    result = run_cli("apply", "manifests", cwd=login_dir, env=environment)
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr
    assert "refused" in result.stderr
    output = result.stdout + result.stderr
    for secret in (LOGIN_JWT, LOGIN_SECRET_ID, wrong_jwt, wrong_secret_id):
        assert secret not in output
    assert sim.state.live() == []  # nothing was created: the login failed while planning


def test_vault_skip_verify_warns_on_every_run(
    sim: Served, tls_vault: ServedVault, tmp_path: Path
) -> None:
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / "m.yaml").write_text(manifest(tls_vault.url))
    environment = sim.env(**tls_vault.env(VAULT_SKIP_VERIFY="1"))
    for _ in range(2):  # the second run changes nothing, and still warns
        result = run_cli("apply", "manifests", cwd=tmp_path, env=environment)
        assert result.returncode == 0, result.stderr
        events = [json.loads(line) for line in result.stderr.splitlines()]
        warnings = [e for e in events if e.get("event") == "vault.tls_unverified"]
        assert len(warnings) == 1
        assert warnings[0]["level"] == "warning"
    assert len(tls_vault.state.paths()) == len(SERVICES) * PER_SERVICE
