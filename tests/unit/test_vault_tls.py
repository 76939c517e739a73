"""TLS as the Vault CLI reads it (issue 15, point 12): VAULT_CAPATH, VAULT_CLIENT_CERT and
VAULT_CLIENT_KEY (mTLS), VAULT_SKIP_VERIFY (with a warning on every run); and the settings that
carry them to the sinks."""

from __future__ import annotations

import socket
import ssl
import threading
from pathlib import Path
from typing import Any

import pytest
import structlog
import trustme
from pydantic import SecretStr

from provisioner.config import Settings, vault_bool
from provisioner.errors import UsageError
from provisioner.model import SinkRecord
from provisioner.reconcile.session import _sink_environ
from provisioner.sinks.base import SinkContext
from provisioner.sinks.vault import VaultSink, VaultSinkOptions
from provisioner.sinks.vault.config import tls_context
from tests.support.factories import no_sleep
from tests.support.vault_support import ServedVault

pytestmark = pytest.mark.anyio
FROM_ENVIRONMENT: dict[str, Any] = {}  # no overrides: every setting from the environment


def record() -> SinkRecord:
    return SinkRecord(
        service="payments-api",
        credential="ingest",
        client_id="cid-1",
        secret=SecretStr("s3cr3t"),
        created_at="2024-05-01T12:00:00+00:00",
    )


async def write_with(vault: ServedVault, cwd: Path, **environ: str) -> None:
    options = VaultSinkOptions(address=vault.url, prefix="streamkap")
    context = SinkContext(cwd=cwd, environ=vault.env(**environ), max_attempts=1)
    sink = VaultSink("vault", options, context, sleep=no_sleep)
    try:
        await sink.write(record())
    finally:
        await sink.aclose()


@pytest.mark.parametrize("value", ["1", "true", "T", "TRUE"])
async def test_vault_skip_verify_writes_to_an_unverified_vault_with_a_warning(
    tls_vault: ServedVault, tmp_path: Path, value: str
) -> None:
    with structlog.testing.capture_logs() as events:
        await write_with(tls_vault, tmp_path, VAULT_SKIP_VERIFY=value)
    assert tls_vault.state.secret("streamkap/payments-api/ingest")["client_id"] == "cid-1"
    [warning] = [e for e in events if e["event"] == "vault.tls_unverified"]
    assert warning["log_level"] == "warning"
    assert "VAULT_SKIP_VERIFY" in warning["message"]


async def test_vault_skip_verify_false_still_verifies(
    tls_vault: ServedVault, tmp_path: Path
) -> None:
    with structlog.testing.capture_logs() as events, pytest.raises(Exception, match="TLS verif"):
        await write_with(tls_vault, tmp_path, VAULT_SKIP_VERIFY="false")
    assert not [e for e in events if e["event"] == "vault.tls_unverified"]


async def test_vault_capath_is_a_directory_of_ca_certificates(
    tls_vault: ServedVault, ca: trustme.CA, tmp_path: Path
) -> None:
    capath = tmp_path / "cas"
    (capath / "nested").mkdir(parents=True)
    trustme.CA().cert_pem.write_to_path(capath / "other.pem")  # another CA: does not matter
    ca.cert_pem.write_to_path(capath / "nested" / "ours.crt")  # any name, any depth
    (capath / "..data").mkdir()  # how Kubernetes mounts a secret: hidden entries are skipped
    await write_with(tls_vault, tmp_path, VAULT_CAPATH="cas")
    assert tls_vault.state.secret("streamkap/payments-api/ingest")["client_id"] == "cid-1"


async def test_vault_cacert_wins_over_vault_capath(
    tls_vault: ServedVault, ca: trustme.CA, tmp_path: Path
) -> None:
    ca.cert_pem.write_to_path(tmp_path / "ca.pem")
    (tmp_path / "empty").mkdir()
    await write_with(tls_vault, tmp_path, VAULT_CACERT="ca.pem", VAULT_CAPATH="empty")


def test_vault_capath_problems_are_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="VAULT_CAPATH missing: not a directory"):
        tls_context({"VAULT_CAPATH": "missing"}, tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="no CA certificate files"):
        tls_context({"VAULT_CAPATH": "empty"}, tmp_path)
    (tmp_path / "empty" / "notes.txt").write_text("not a certificate")
    with pytest.raises(UsageError, match=r"VAULT_CAPATH .*notes\.txt: cannot load it"):
        tls_context({"VAULT_CAPATH": "empty"}, tmp_path)


# mTLS: the context presents the client certificate to a server that requires one ------------


@pytest.fixture
def client_files(ca: trustme.CA, tmp_path: Path) -> tuple[Path, Path]:
    client = ca.issue_cert("provisioner@example")
    cert, key = tmp_path / "client.crt", tmp_path / "client.key"
    for blob in client.cert_chain_pems:
        blob.write_to_path(cert, append=True)
    client.private_key_pem.write_to_path(key)
    return cert, key


def handshake(ca: trustme.CA, context: ssl.SSLContext) -> dict[str, object] | None:
    """One TLS handshake against a server that requires a client certificate signed by `ca`;
    the client certificate the server saw."""
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    ca.configure_trust(server_context)
    server_context.verify_mode = ssl.CERT_REQUIRED
    seen: dict[str, object] = {}
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        connection, _ = listener.accept()
        try:
            with server_context.wrap_socket(connection, server_side=True) as tls:
                seen["peer"] = tls.getpeercert()
                tls.sendall(b"ok")
        except (ssl.SSLError, OSError) as exc:
            seen["error"] = exc

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    port = listener.getsockname()[1]
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            tls.recv(2)
    finally:
        thread.join(5)
        listener.close()
    peer = seen.get("peer")
    return peer if isinstance(peer, dict) else None


def test_the_context_presents_the_client_certificate(
    ca: trustme.CA, client_files: tuple[Path, Path], tmp_path: Path
) -> None:
    ca.cert_pem.write_to_path(tmp_path / "ca.pem")
    cert, key = client_files
    context = tls_context(
        {"VAULT_CACERT": "ca.pem", "VAULT_CLIENT_CERT": cert.name, "VAULT_CLIENT_KEY": key.name},
        tmp_path,
    )
    assert isinstance(context, ssl.SSLContext)
    peer = handshake(ca, context)
    assert peer is not None
    assert ("email", "provisioner@example") in peer["subjectAltName"]  # type: ignore[operator]


def test_without_a_client_certificate_the_server_refuses(ca: trustme.CA, tmp_path: Path) -> None:
    ca.cert_pem.write_to_path(tmp_path / "ca.pem")
    context = tls_context({"VAULT_CACERT": "ca.pem"}, tmp_path)
    assert isinstance(context, ssl.SSLContext)
    try:
        peer = handshake(ca, context)
    except OSError:  # ssl.SSLError included: the server's alert reached the client
        peer = None
    assert peer is None


def test_client_cert_and_key_problems_are_usage_errors(
    client_files: tuple[Path, Path], tmp_path: Path
) -> None:
    cert, key = client_files
    with pytest.raises(UsageError, match="must be set together"):
        tls_context({"VAULT_CLIENT_CERT": str(cert)}, tmp_path)
    with pytest.raises(UsageError, match="must be set together"):
        tls_context({"VAULT_CLIENT_KEY": str(key)}, tmp_path)
    other = trustme.CA().issue_cert("x").private_key_pem
    other.write_to_path(tmp_path / "other.key")
    with pytest.raises(UsageError, match=r"VAULT_CLIENT_CERT/VAULT_CLIENT_KEY .* cannot load it"):
        tls_context({"VAULT_CLIENT_CERT": str(cert), "VAULT_CLIENT_KEY": "other.key"}, tmp_path)


def test_skip_verify_keeps_the_client_certificate(
    ca: trustme.CA, client_files: tuple[Path, Path], tmp_path: Path
) -> None:
    cert, key = client_files
    environ = {
        "VAULT_SKIP_VERIFY": "1",
        "VAULT_CLIENT_CERT": str(cert),
        "VAULT_CLIENT_KEY": str(key),
    }
    context = tls_context(environ, tmp_path)
    assert isinstance(context, ssl.SSLContext)
    assert (context.verify_mode, context.check_hostname) == (ssl.CERT_NONE, False)
    assert handshake(ca, context) is not None


def test_no_tls_setting_leaves_the_system_trust_store(tmp_path: Path) -> None:
    assert tls_context({}, tmp_path) is True
    assert tls_context({"VAULT_SKIP_VERIFY": "false"}, tmp_path) is True


# Settings ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", True), ("t", True), ("True", True), ("0", False), ("F", False), ("", False)],
)
def test_vault_skip_verify_reads_like_the_vault_cli(value: str, expected: bool) -> None:
    assert vault_bool(value) is expected


@pytest.mark.parametrize("value", ["yes", "on", "2", "tRuE"])
def test_other_vault_skip_verify_values_are_errors(value: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="expected a boolean"):
        vault_bool(value)
    with pytest.raises(UsageError, match="VAULT_SKIP_VERIFY"):
        tls_context({"VAULT_SKIP_VERIFY": value}, tmp_path)


def test_the_tls_settings_reach_the_sinks(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "VAULT_CAPATH": "/etc/vault/cas",
        "VAULT_CLIENT_CERT": "/etc/vault/client.crt",
        "VAULT_CLIENT_KEY": "/etc/vault/client.key",
        "VAULT_SKIP_VERIFY": "t",
    }.items():
        monkeypatch.setenv(name, value)
    environ = _sink_environ(Settings(**FROM_ENVIRONMENT))
    assert environ["VAULT_CAPATH"] == "/etc/vault/cas"
    assert environ["VAULT_CLIENT_CERT"] == "/etc/vault/client.crt"
    assert environ["VAULT_CLIENT_KEY"] == "/etc/vault/client.key"
    assert environ["VAULT_SKIP_VERIFY"] == "true"
    monkeypatch.setenv("VAULT_SKIP_VERIFY", "0")
    assert "VAULT_SKIP_VERIFY" not in _sink_environ(Settings(**FROM_ENVIRONMENT))
