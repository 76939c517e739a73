"""Proof the vault sink speaks real Vault: hvac reads what it wrote, it reads what hvac wrote."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import hvac.exceptions
import pytest
import trustme
from pydantic import SecretStr

from provisioner.errors import SinkError
from provisioner.model import SinkRecord
from provisioner.sinks.base import SinkContext
from provisioner.sinks.vault import VaultSink, VaultSinkOptions
from tests.support.factories import no_sleep
from tests.support.vault_support import ServedVault

pytestmark = pytest.mark.anyio
PATH = "streamkap/payments-api/ingest"


def record(client_id: str = "cid-1") -> SinkRecord:
    return SinkRecord(
        service="payments-api",
        credential="ingest",
        client_id=client_id,
        secret=SecretStr("s3cr3t"),
        description="Payments ingestion",
        role_ids=("role-1",),
        created_at="2024-05-01T12:00:00+00:00",
    )


def open_sink(address: str, environ: dict[str, str], prefix: str = "streamkap") -> VaultSink:
    options = VaultSinkOptions(address=address, prefix=prefix)
    context = SinkContext(cwd=Path.cwd(), environ=environ, max_attempts=2)
    return VaultSink("vault", options, context, sleep=no_sleep)


@pytest.fixture
async def sink(vault: ServedVault) -> AsyncIterator[VaultSink]:
    opened = open_sink(vault.url, vault.env())
    yield opened
    await opened.aclose()


async def test_hvac_reads_what_the_sink_wrote(vault: ServedVault, sink: VaultSink) -> None:
    await sink.write(record())
    assert vault.read(PATH) == record().to_document()


async def test_the_sink_reads_and_overwrites_what_hvac_wrote(
    vault: ServedVault, sink: VaultSink
) -> None:
    kv = vault.hvac().secrets.kv.v2
    kv.create_or_update_secret(PATH, {"client_id": "from-hvac", "secret": "x"}, cas=0)
    assert await sink.read("payments-api", "ingest") == "from-hvac"
    await sink.write(record("cid-2"))
    answer = kv.read_secret_version(PATH, raise_on_deleted_version=True)
    assert answer["data"]["metadata"]["version"] == 2
    assert answer["data"]["data"]["client_id"] == "cid-2"


async def test_hvac_lists_one_folder_per_service(vault: ServedVault, sink: VaultSink) -> None:
    await sink.write(record())
    listed = vault.hvac().secrets.kv.v2.list_secrets("streamkap")
    assert listed["data"]["keys"] == ["payments-api/"]


async def test_an_undo_is_a_soft_delete_that_keeps_history(
    vault: ServedVault, sink: VaultSink
) -> None:
    await sink.write(record())
    await sink.delete("payments-api", "ingest", "cid-1")
    kv = vault.hvac().secrets.kv.v2
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv.read_secret_version(PATH, raise_on_deleted_version=True)
    deleted = kv.read_secret_version(PATH, raise_on_deleted_version=False)
    assert deleted["data"]["metadata"]["deletion_time"] != ""
    assert kv.read_secret_metadata(PATH)["data"]["current_version"] == 1


async def test_a_version_deleted_with_hvac_reads_as_none(
    vault: ServedVault, sink: VaultSink
) -> None:
    await sink.write(record())
    vault.hvac().secrets.kv.v2.delete_latest_version_of_secret(PATH)
    assert await sink.read("payments-api", "ingest") is None
    await sink.write(record("cid-2"))  # check-and-set on the deleted version's number
    assert vault.read(PATH)["client_id"] == "cid-2"


async def test_the_sinks_address_wins_over_vault_addr(vault: ServedVault) -> None:
    sink = open_sink(vault.url, vault.env(VAULT_ADDR="http://127.0.0.1:9"))
    try:
        await sink.write(record())
    finally:
        await sink.aclose()
    assert vault.read(PATH)["client_id"] == "cid-1"


async def test_hvac_finds_it_in_the_same_namespace(vault: ServedVault) -> None:
    sink = open_sink(vault.url, vault.env(VAULT_NAMESPACE="team-a"))
    try:
        await sink.write(record())
    finally:
        await sink.aclose()
    assert vault.read(PATH, namespace="team-a")["client_id"] == "cid-1"
    with pytest.raises(hvac.exceptions.InvalidPath):
        vault.read(PATH)


# --- TLS -----------------------------------------------------------------------------------


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(path)
    return path


async def test_the_sink_refuses_a_certificate_it_cannot_verify(tls_vault: ServedVault) -> None:
    assert tls_vault.url.startswith("https://")
    sink = open_sink(tls_vault.url, tls_vault.env())
    try:
        with pytest.raises(SinkError, match=r"TLS verification of https://127\.0\.0\.1") as caught:
            await sink.write(record())
    finally:
        await sink.aclose()
    assert "set VAULT_CACERT" in str(caught.value)
    assert not caught.value.retryable
    assert tls_vault.state.paths() == []


async def test_with_vault_cacert_the_sink_verifies_and_writes(
    tls_vault: ServedVault, ca_file: Path
) -> None:
    sink = open_sink(tls_vault.url, tls_vault.env(VAULT_CACERT=str(ca_file)))
    try:
        await sink.write(record())
    finally:
        await sink.aclose()
    assert tls_vault.read(PATH, verify=str(ca_file))["client_id"] == "cid-1"
