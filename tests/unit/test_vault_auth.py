"""The vault sink's logins (issue 15, point 12): Kubernetes and AppRole against the Vault stub on
a socket, a token that expires mid-run, refused logins, hvac reading what the sink wrote, and the
`auth` block's validation in manifests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import hvac
import pytest
import structlog
from pydantic import SecretStr

from provisioner.errors import ManifestError, SinkError, UsageError
from provisioner.manifest import load_manifests
from provisioner.model import SinkRecord
from provisioner.simulator import VAULT_ROOT_TOKEN, Grant, ManualClock, VaultState
from provisioner.sinks.base import SinkContext
from provisioner.sinks.vault import VaultSink, VaultSinkOptions
from provisioner.sinks.vault.auth import LoginFailed
from tests.conftest import WriteManifest
from tests.support.factories import no_sleep
from tests.support.vault_support import ServedVault, served_vault

pytestmark = pytest.mark.anyio

JWT = "eyJhbGciOiJSUzI1NiJ9.sa-token-Do-Not-Print.signature"
ROLE_ID = "6a1b2c3d-role"
SECRET_ID = "9f8e7d6c-secret-Do-Not-Print"
SECRET = "s3cr3t-Do-Not-Print"
POLICY = {"secret/data/streamkap/*": ["create", "read", "update", "delete"]}
K8S_LOGIN = "/v1/auth/kubernetes/login"
APPROLE_LOGIN = "/v1/auth/approle/login"


def record(credential: str = "ingest", client_id: str = "cid-1") -> SinkRecord:
    return SinkRecord(
        service="payments-api",
        credential=credential,
        client_id=client_id,
        secret=SecretStr(SECRET),
        description="Payments ingestion",
        role_ids=("role-1",),
        created_at="2024-05-01T12:00:00+00:00",
    )


@pytest.fixture
def vault(clock: ManualClock) -> Iterator[ServedVault]:
    state = VaultState(now=clock)
    grant = Grant(policy=POLICY, policies=("default", "streamkap-provisioner"), ttl=60)
    state.add_kubernetes_role("streamkap-provisioner", JWT, grant)
    state.add_approle(ROLE_ID, SECRET_ID, grant, name="streamkap-provisioner")
    with served_vault(state) as served:
        yield served


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "jwt").write_text(JWT + "\n")
    (tmp_path / "secret-id").write_text(SECRET_ID + "\n")
    return tmp_path


KUBERNETES = {"method": "kubernetes", "role": "streamkap-provisioner", "jwt_file": "jwt"}
APPROLE = {"method": "approle", "role_id": ROLE_ID, "secret_id_file": "secret-id"}


@pytest.fixture
async def opened() -> AsyncIterator[list[VaultSink]]:
    sinks: list[VaultSink] = []
    yield sinks
    for sink in sinks:
        await sink.aclose()


def make_sink(
    opened: list[VaultSink], url: str, cwd: Path, auth: dict[str, Any], **environ: str
) -> VaultSink:
    options = VaultSinkOptions.model_validate({"address": url, "prefix": "streamkap", "auth": auth})
    context = SinkContext(cwd=cwd, environ=environ, max_attempts=2)
    sink = VaultSink("vault", options, context, sleep=no_sleep)
    opened.append(sink)
    return sink


def logins(vault: ServedVault, path: str) -> list[int]:
    return [call.status for call in vault.state.calls("POST", path)]


@pytest.mark.parametrize(
    ("auth", "login_path"), [(KUBERNETES, K8S_LOGIN), (APPROLE, APPROLE_LOGIN)], ids=["k8s", "app"]
)
async def test_the_sink_logs_in_once_and_writes_and_reads_with_the_logins_token(
    vault: ServedVault,
    files: Path,
    opened: list[VaultSink],
    auth: dict[str, Any],
    login_path: str,
) -> None:
    # No VAULT_TOKEN at all: the token can only come from the login.
    sink = make_sink(opened, vault.url, files, auth)
    async with anyio.create_task_group() as group:
        for index in range(12):
            group.start_soon(sink.write, record(f"cred-{index}", f"cid-{index}"))
    assert logins(vault, login_path) == [200]  # one login, however many calls waited on it
    assert await sink.read("payments-api", "cred-3") == "cid-3"
    assert vault.read("streamkap/payments-api/cred-3")["client_id"] == "cid-3"
    tokens = {call.path for call in vault.state.calls()} - {login_path}
    assert all(path.startswith("/v1/secret/data/streamkap/") for path in tokens)
    assert logins(vault, login_path) == [200]


async def test_an_expired_token_is_replaced_by_a_new_login(
    vault: ServedVault, files: Path, opened: list[VaultSink], clock: ManualClock
) -> None:
    sink = make_sink(opened, vault.url, files, KUBERNETES)
    await sink.write(record("first"))
    clock.advance(61)  # past the 60 s lease: every call with the old token is a 403
    with structlog.testing.capture_logs() as events:
        await sink.write(record("second", "cid-2"))
    assert vault.read("streamkap/payments-api/second")["client_id"] == "cid-2"
    assert logins(vault, K8S_LOGIN) == [200, 200]
    assert [e["event"] for e in events if e["event"].startswith("vault.login")] == [
        "vault.login_again"
    ]
    assert not any(JWT in repr(e) or "hvs." in repr(e) for e in events)


async def test_concurrent_calls_after_expiry_log_in_again_once(
    vault: ServedVault, files: Path, opened: list[VaultSink], clock: ManualClock
) -> None:
    sink = make_sink(opened, vault.url, files, APPROLE)
    await sink.write(record("first"))
    clock.advance(120)
    async with anyio.create_task_group() as group:
        for index in range(8):
            group.start_soon(sink.read, "payments-api", f"cred-{index}")
    assert logins(vault, APPROLE_LOGIN) == [200, 200]


async def test_a_live_token_refused_by_its_policy_is_not_replaced(
    vault: ServedVault, files: Path, opened: list[VaultSink]
) -> None:
    options = VaultSinkOptions.model_validate(
        {"address": vault.url, "prefix": "elsewhere", "auth": KUBERNETES}
    )
    sink = VaultSink("vault", options, SinkContext(cwd=files, max_attempts=2), sleep=no_sleep)
    opened.append(sink)
    with pytest.raises(SinkError, match="permission denied") as caught:
        await sink.write(record())
    message = str(caught.value)
    assert "the token of the kubernetes login (mount 'kubernetes'" in message
    assert 'path "secret/data/elsewhere/*"' in message
    assert logins(vault, K8S_LOGIN) == [200]  # lookup-self said the token is alive: no new login


@pytest.mark.parametrize(
    ("auth", "jwt", "secret_id", "expected"),
    [
        (
            {**KUBERNETES, "role": "nope"},
            JWT,
            SECRET_ID,
            "kubernetes login (mount 'kubernetes', role 'nope') at http",
        ),
        (KUBERNETES, "forged.jwt", SECRET_ID, "HTTP 403: permission denied"),
        (
            {**APPROLE, "role_id": "wrong-role"},
            JWT,
            SECRET_ID,
            "approle login (mount 'approle', role_id 'wrong-role')",
        ),
        (APPROLE, JWT, "wrong-secret-id", "was refused: HTTP 400: invalid role or secret ID"),
        ({**KUBERNETES, "mount": "k8s-prod"}, JWT, SECRET_ID, "(mount 'k8s-prod', role"),
    ],
    ids=["k8s-role", "k8s-jwt", "approle-role", "approle-secret", "k8s-mount"],
)
async def test_a_refused_login_is_a_usage_error_naming_method_mount_and_role(
    vault: ServedVault,
    files: Path,
    opened: list[VaultSink],
    auth: dict[str, Any],
    jwt: str,
    secret_id: str,
    expected: str,
) -> None:
    (files / "jwt").write_text(jwt)
    (files / "secret-id").write_text(secret_id)
    sink = make_sink(opened, vault.url, files, auth, VAULT_TOKEN=VAULT_ROOT_TOKEN)
    with pytest.raises(LoginFailed) as caught:
        await sink.read("payments-api", "ingest")
    assert isinstance(caught.value, UsageError)  # exit 2
    message = str(caught.value)
    assert expected in message
    assert message.startswith("sink 'vault': the Vault ")
    assert jwt not in message
    assert secret_id not in message
    assert vault.state.paths() == []


async def test_an_unreadable_jwt_file_is_a_usage_error_before_any_call(
    vault: ServedVault, tmp_path: Path, opened: list[VaultSink]
) -> None:
    with pytest.raises(UsageError, match=r"cannot read the JWT file .*/jwt for the Vault kuber"):
        make_sink(opened, vault.url, tmp_path, KUBERNETES)
    (tmp_path / "secret-id").write_text("\n")
    with pytest.raises(UsageError, match=r"secret_id file .*secret-id .* is empty"):
        make_sink(opened, vault.url, tmp_path, APPROLE)
    assert vault.state.calls() == []


async def test_a_device_or_a_huge_secret_id_file_is_refused_unread(
    vault: ServedVault, tmp_path: Path, opened: list[VaultSink]
) -> None:
    (tmp_path / "secret-id").symlink_to("/dev/zero")  # endless: read to the end, it fills memory
    with pytest.raises(UsageError, match=r"secret_id file .*secret-id .*not a regular file"):
        make_sink(opened, vault.url, tmp_path, APPROLE)
    (tmp_path / "secret-id").unlink()
    (tmp_path / "secret-id").write_bytes(b"x" * (65 * 1024))
    with pytest.raises(UsageError, match=r"secret_id file .*secret-id .*larger than 64 KiB"):
        make_sink(opened, vault.url, tmp_path, APPROLE)
    assert vault.state.calls() == []


async def test_a_rotated_jwt_is_read_again_for_the_next_login(
    vault: ServedVault, files: Path, opened: list[VaultSink], clock: ManualClock
) -> None:
    vault.state.add_kubernetes_role("streamkap-provisioner", [JWT, "rotated.jwt"])
    sink = make_sink(opened, vault.url, files, KUBERNETES)
    await sink.write(record("first"))
    (files / "jwt").write_text("rotated.jwt")
    vault.state.add_kubernetes_role("streamkap-provisioner", "rotated.jwt", Grant(ttl=60))
    clock.advance(3601)
    await sink.write(record("second", "cid-2"))
    assert logins(vault, K8S_LOGIN) == [200, 200]


async def test_the_token_method_ignores_login_files_and_uses_vault_token(
    vault: ServedVault, tmp_path: Path, opened: list[VaultSink]
) -> None:
    sink = make_sink(opened, vault.url, tmp_path, {"method": "token"}, VAULT_TOKEN=VAULT_ROOT_TOKEN)
    await sink.write(record())
    assert logins(vault, K8S_LOGIN) == []
    with pytest.raises(UsageError, match="no Vault token"):
        make_sink(opened, vault.url, tmp_path, {"method": "token"})


async def test_under_simulate_the_stubs_root_token_is_used_whatever_auth_says(
    vault: ServedVault, tmp_path: Path
) -> None:
    options = VaultSinkOptions.model_validate({"address": vault.url, "auth": KUBERNETES})
    context = SinkContext(
        cwd=tmp_path, environ={"VAULT_TOKEN": VAULT_ROOT_TOKEN}, simulated=True, max_attempts=2
    )
    sink = VaultSink("vault", options, context, sleep=no_sleep)  # no JWT file: not read
    try:
        await sink.write(record())
    finally:
        await sink.aclose()
    assert logins(vault, K8S_LOGIN) == []


# hvac's own logins read what the sink wrote ---------------------------------------------------


async def test_hvac_logged_in_the_same_ways_reads_what_the_sink_wrote(
    vault: ServedVault, files: Path, opened: list[VaultSink]
) -> None:
    await make_sink(opened, vault.url, files, KUBERNETES).write(record("by-k8s", "cid-k"))
    await make_sink(opened, vault.url, files, APPROLE).write(record("by-approle", "cid-a"))

    def read(client: hvac.Client, name: str) -> Any:
        answer = client.secrets.kv.v2.read_secret_version(
            f"streamkap/payments-api/{name}", raise_on_deleted_version=True
        )
        return answer["data"]["data"]

    kubernetes = hvac.Client(url=vault.url)
    kubernetes.auth.kubernetes.login("streamkap-provisioner", JWT)
    approle = hvac.Client(url=vault.url)
    approle.auth.approle.login(ROLE_ID, SECRET_ID)
    for client in (kubernetes, approle):
        assert read(client, "by-k8s")["client_id"] == "cid-k"
        assert read(client, "by-approle") == record("by-approle", "cid-a").to_document()


# The auth block in a manifest -----------------------------------------------------------------

MANIFEST = """\
version: 1
sinks:
  vault:
    type: vault
    address: https://vault.example:8200
    auth:
{auth}
services:
  - name: payments-api
    credentials:
      - name: ingest
        roles: [admin]
        sinks: [vault]
"""


def test_a_manifests_auth_block_is_validated(write_manifest: WriteManifest) -> None:
    path = write_manifest(
        "ok.yaml",
        MANIFEST.format(auth="      method: kubernetes\n      role: streamkap-provisioner"),
    )
    auth = load_manifests([path]).sinks["vault"].options.model_dump()["auth"]
    assert auth == {
        "method": "kubernetes",
        "role": "streamkap-provisioner",
        "mount": "kubernetes",
        "jwt_file": "/var/run/secrets/kubernetes.io/serviceaccount/token",
    }


@pytest.mark.parametrize(
    ("auth", "expected"),
    [
        (
            "      method: kubernetes\n      role: r\n      rolee: x",
            ["sinks.vault.auth.rolee: unknown field"],
        ),
        ("      method: kubernetes", ["sinks.vault.auth.role: required field is missing"]),
        (
            "      method: approle\n      role_id: [1]\n      secret_id_file: f",
            ["sinks.vault.auth.role_id: expected a string, got a list"],
        ),
        (
            "      method: ldap",
            [
                "sinks.vault.auth.method: unknown auth method 'ldap': expected one of token, "
                "kubernetes, approle"
            ],
        ),
        ("      role: r", ["sinks.vault.auth.method: required field is missing"]),
        (
            "      method: approle\n      role_id: r\n      secret_id_file: f\n      jwt_file: j",
            ["sinks.vault.auth.jwt_file: unknown field"],
        ),
        (
            "      method: kubernetes\n      role: r\n      mount: ../x",
            [
                "sinks.vault.auth.mount: Value error, '../x' is not an auth mount path (letters, "
                "digits, '_.-' and '/')"
            ],
        ),
    ],
)
def test_auth_problems_are_manifest_errors_at_their_line(
    write_manifest: WriteManifest, auth: str, expected: list[str]
) -> None:
    path = write_manifest("m.yaml", MANIFEST.format(auth=auth))
    with pytest.raises(ManifestError) as caught:
        load_manifests([path])
    found = [problem for problem in caught.value.problems if ": sinks.vault" in problem]
    assert [problem.split(": ", 1)[1] for problem in found] == expected
    # The line is the offending key's (the auth block starts on line 6).
    assert all(problem.startswith(f"{path}:") for problem in found)
    line = int(found[0].split(":")[1])
    assert 6 <= line <= 10
