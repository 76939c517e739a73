"""The `vault` sink against the in-process Vault stub: layout, check-and-set, undo, errors."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr, ValidationError

from provisioner.errors import SinkError, UsageError
from provisioner.model import SinkRecord
from provisioner.simulator import VAULT_ROOT_TOKEN, FaultConfig, VaultState, create_vault_app
from provisioner.sinks import parse_sink_uri, sink_type
from provisioner.sinks.base import Sink, SinkContext
from provisioner.sinks.vault import VaultSink, VaultSinkOptions
from tests.support.factories import no_sleep

pytestmark = pytest.mark.anyio
SECRET = "s3cr3t-Do-Not-Print"
ADDRESS = "https://vault.example:8200"
KEY = "streamkap/payments-api/ingest"

MakeSink = Callable[..., VaultSink]


def record(client_id: str = "cid-1", credential: str = "ingest") -> SinkRecord:
    return SinkRecord(
        service="payments-api",
        credential=credential,
        client_id=client_id,
        secret=SecretStr(SECRET),
        description="Payments ingestion",
        role_ids=("role-1",),
        permission_ids=("perm-1",),
        service_id="svc-123",
        created_at="2024-05-01T12:00:00+00:00",
    )


@pytest.fixture
def state() -> VaultState:
    return VaultState()


@pytest.fixture
async def make_sink(state: VaultState) -> AsyncIterator[MakeSink]:
    opened: list[VaultSink] = []

    def make(
        prefix: str | None = "streamkap",
        mount: str = "secret",
        environ: dict[str, str] | None = None,
        max_attempts: int = 3,
    ) -> VaultSink:
        options = VaultSinkOptions(address=ADDRESS, mount=mount, prefix=prefix)
        context = SinkContext(
            cwd=Path.cwd(),
            environ={"VAULT_TOKEN": VAULT_ROOT_TOKEN} if environ is None else environ,
            transport=httpx.ASGITransport(app=create_vault_app(state)),
            max_attempts=max_attempts,
        )
        sink = VaultSink("vault", options, context, sleep=no_sleep)
        opened.append(sink)
        return sink

    yield make
    for sink in opened:
        await sink.aclose()


async def test_the_sink_satisfies_the_protocol_and_is_registered(make_sink: MakeSink) -> None:
    assert isinstance(make_sink(), Sink)
    assert sink_type("vault") is VaultSink


async def test_write_stores_the_file_sinks_fields_at_mount_data_prefix_service_credential(
    state: VaultState, make_sink: MakeSink
) -> None:
    await make_sink().write(record())
    assert state.secret(KEY) == record().to_document()
    assert state.paths() == [KEY]


async def test_without_a_prefix_the_service_is_the_top_folder(
    state: VaultState, make_sink: MakeSink
) -> None:
    await make_sink(prefix=None).write(record())
    assert state.paths() == ["payments-api/ingest"]


async def test_read_returns_the_stored_client_id_or_none(make_sink: MakeSink) -> None:
    sink = make_sink()
    assert await sink.read("payments-api", "ingest") is None
    await sink.write(record("cid-9"))
    assert await make_sink().read("payments-api", "ingest") == "cid-9"


@pytest.mark.parametrize("how", ["delete", "destroy"])
async def test_a_deleted_or_destroyed_latest_version_reads_as_none(
    state: VaultState, make_sink: MakeSink, how: str
) -> None:
    await make_sink().write(record())
    key = ("", "secret", KEY)
    state.delete_versions(key) if how == "delete" else state.destroy_versions(key, [1])
    assert await make_sink().read("payments-api", "ingest") is None


async def test_writes_check_and_set_on_the_version_read(
    state: VaultState, make_sink: MakeSink
) -> None:
    state.write(("", "secret", KEY), {"client_id": "old"}, None)
    sink = make_sink()
    assert await sink.read("payments-api", "ingest") == "old"
    await sink.write(record("cid-2"))
    metadata = state.metadata(("", "secret", KEY))
    assert metadata is not None
    assert metadata.current_version == 2


@pytest.mark.parametrize("status", [400, 412])
async def test_a_concurrent_writer_is_detected_then_the_retry_writes_on_its_version(
    state: VaultState, make_sink: MakeSink, status: int
) -> None:
    state.cas_mismatch_status = status
    sink = make_sink()
    assert await sink.read("payments-api", "ingest") is None
    state.write(("", "secret", KEY), {"client_id": "someone-else"}, None)
    with pytest.raises(SinkError, match=f"changed secret/data/{KEY} after version 0") as caught:
        await sink.write(record("cid-2"))
    assert caught.value.retryable
    assert state.secret(KEY) == {"client_id": "someone-else"}  # not clobbered unseen
    await sink.write(record("cid-2"))  # the engine's retry
    assert state.secret(KEY)["client_id"] == "cid-2"


async def test_a_conflict_with_our_own_landed_write_counts_as_written(
    state: VaultState, make_sink: MakeSink
) -> None:
    sink = make_sink()
    await sink.read("payments-api", "ingest")
    state.write(("", "secret", KEY), record("cid-2").to_document(), None)  # "lost answer"
    await sink.write(record("cid-2"))
    metadata = state.metadata(("", "secret", KEY))
    assert metadata is not None
    assert metadata.current_version == 1


async def test_delete_soft_deletes_the_latest_version_when_it_holds_the_client_id(
    state: VaultState, make_sink: MakeSink
) -> None:
    sink = make_sink()
    await sink.write(record("cid-1"))
    await sink.write(record("cid-2"))
    await sink.delete("payments-api", "ingest", "cid-2")
    assert state.secret(KEY) is None
    found = state.read(("", "secret", KEY), version=1)
    assert found is not None
    assert found.data is not None
    assert found.data["client_id"] == "cid-1"


async def test_delete_leaves_a_record_holding_another_client_id(
    state: VaultState, make_sink: MakeSink
) -> None:
    sink = make_sink()
    await sink.write(record("cid-1"))
    await sink.delete("payments-api", "ingest", "cid-other")
    await sink.delete("payments-api", "missing", "cid-1")
    assert state.secret(KEY)["client_id"] == "cid-1"


async def test_a_policy_on_the_wrong_path_fails_fast_naming_the_data_path(
    state: VaultState, make_sink: MakeSink
) -> None:
    # The classic KV v2 mistake: a policy on `secret/streamkap/*` instead of `secret/data/...`.
    state.add_token("limited", {"secret/streamkap/*": ["create", "update", "read"]})
    sink = make_sink(environ={"VAULT_TOKEN": "limited"})
    with pytest.raises(SinkError) as caught:
        await sink.write(record())
    message = str(caught.value)
    assert not caught.value.retryable
    assert "may not read secret/data/streamkap/payments-api/ingest" in message
    assert 'path "secret/data/streamkap/*"' in message
    assert "limited" not in message
    assert len(state.calls()) == 1


async def test_a_read_only_token_is_told_it_needs_create_and_update(
    state: VaultState, make_sink: MakeSink
) -> None:
    state.add_token("reader", {"secret/data/streamkap/*": ["read"]})
    with pytest.raises(SinkError, match=r'may not write .*\["create", "update"\]'):
        await make_sink(environ={"VAULT_TOKEN": "reader"}).write(record())


async def test_an_unknown_mount_fails_fast_naming_it(make_sink: MakeSink) -> None:
    with pytest.raises(SinkError, match=r"no KV mount 'kv' at https://vault.example:8200") as c:
        await make_sink(mount="kv").read("payments-api", "ingest")
    assert not c.value.retryable


async def test_reads_retry_503_then_give_up_retryable(
    state: VaultState, make_sink: MakeSink
) -> None:
    state.faults = FaultConfig(fail_all=True)
    with pytest.raises(SinkError, match="HTTP 503: Vault is sealed") as caught:
        await make_sink(max_attempts=4).read("payments-api", "ingest")
    assert caught.value.retryable
    assert len(state.calls()) == 4


async def test_reads_and_deletes_ride_out_transient_errors(
    state: VaultState, make_sink: MakeSink
) -> None:
    sink = make_sink(max_attempts=20)
    await sink.write(record())
    state.faults = FaultConfig(error_rate=0.5, seed=1)
    assert await sink.read("payments-api", "ingest") == "cid-1"
    await sink.delete("payments-api", "ingest", "cid-1")
    assert state.secret(KEY) is None
    assert 503 in {call.status for call in state.calls()}


async def test_a_write_refused_by_a_sealed_vault_is_left_to_the_engine_to_retry(
    state: VaultState, make_sink: MakeSink
) -> None:
    sink = make_sink()
    await sink.read("payments-api", "ingest")
    state.fail_writes = True
    state.reset_calls()
    with pytest.raises(SinkError) as caught:
        await sink.write(record())
    assert caught.value.retryable
    assert len(state.calls()) == 1  # one attempt: the engine owns write retries


async def test_the_namespace_header_selects_the_namespace(
    state: VaultState, make_sink: MakeSink
) -> None:
    sink = make_sink(environ={"VAULT_TOKEN": VAULT_ROOT_TOKEN, "VAULT_NAMESPACE": "/team/"})
    await sink.write(record())
    assert state.secret(KEY) is None
    assert state.secret(KEY, namespace="team") == record().to_document()


async def test_the_token_can_come_from_a_token_file(
    state: VaultState, make_sink: MakeSink, tmp_path: Path
) -> None:
    (tmp_path / "token").write_text(VAULT_ROOT_TOKEN + "\n")
    await make_sink(environ={"VAULT_TOKEN_FILE": str(tmp_path / "token")}).write(record())
    assert state.secret(KEY) is not None


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({}, "no Vault token"),
        ({"VAULT_TOKEN_FILE": "/nonexistent/token"}, "cannot read the Vault token file"),
        (
            {"VAULT_TOKEN": "t", "VAULT_CACERT": "/nonexistent/ca.pem"},
            "VAULT_CACERT /nonexistent/ca.pem: cannot load it",
        ),
    ],
)
def test_missing_configuration_is_a_usage_error(environ: dict[str, str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        VaultSink("vault", VaultSinkOptions(address=ADDRESS), SinkContext(Path(), environ))


def test_the_address_falls_back_to_vault_addr_and_is_required() -> None:
    environ = {"VAULT_TOKEN": "t", "VAULT_ADDR": "http://127.0.0.1:8200/"}
    sink = VaultSink("vault", VaultSinkOptions(), SinkContext(Path(), environ))
    assert "http://127.0.0.1:8200," in repr(sink)
    with pytest.raises(UsageError, match="no Vault address"):
        VaultSink("vault", VaultSinkOptions(), SinkContext(Path(), {"VAULT_TOKEN": "t"}))


async def test_the_repr_never_shows_the_token(make_sink: MakeSink) -> None:
    sink = make_sink(environ={"VAULT_TOKEN": SECRET})
    assert SECRET not in repr(sink)
    assert SECRET not in repr(sink._connection)


async def test_an_unreachable_vault_is_a_retryable_error_without_secrets() -> None:
    environ = {"VAULT_TOKEN": SECRET}
    options = VaultSinkOptions(address="http://127.0.0.1:9")  # discard port: nothing listens
    sink = VaultSink("vault", options, SinkContext(Path(), environ, max_attempts=2), sleep=no_sleep)
    try:
        with pytest.raises(SinkError, match=r"Vault at http://127\.0\.0\.1:9: ConnectError") as c:
            await sink.write(record())
    finally:
        await sink.aclose()
    assert c.value.retryable
    assert SECRET not in str(c.value)


@pytest.mark.parametrize(
    ("uri", "options"),
    [
        (
            "vault:https://vault.example:8200/secret/streamkap",
            {"address": "https://vault.example:8200", "mount": "secret", "prefix": "streamkap"},
        ),
        (
            "vault:http://127.0.0.1:8200/kv/",
            {"address": "http://127.0.0.1:8200", "mount": "kv", "prefix": None},
        ),
        (
            "vault:http://127.0.0.1:8200/kv/a/b",
            {"address": "http://127.0.0.1:8200", "mount": "kv", "prefix": "a/b"},
        ),
    ],
)
def test_sink_uris_give_address_mount_and_prefix(uri: str, options: dict[str, Any]) -> None:
    definition = parse_sink_uri("default", uri)
    assert definition.type == "vault"
    assert definition.options.model_dump(exclude={"auth", "fields"}) == options
    assert definition.options.model_dump()["auth"] == {"method": "token"}  # the default


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("vault:https://vault.example:8200", "expected vault:http"),
        ("vault:vault.example/secret", "expected vault:http"),
        ("vault:ftp://vault.example/secret", "http:// or https://"),
        ("vault:https://user:pw@vault.example/secret", "must not hold credentials"),
        ("vault:https://vault.example/sec ret", "is not a Vault path"),
        ("vault:https://vault.example/secret/../x", "is not a Vault path"),
    ],
)
def test_bad_sink_uris_are_usage_errors(uri: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_sink_uri("default", uri)


def test_options_reject_unknown_keys() -> None:
    with pytest.raises(ValidationError):
        VaultSinkOptions.model_validate({"address": ADDRESS, "path": "x"})


async def test_a_rate_limited_write_carries_vaults_retry_after(
    state: VaultState, make_sink: MakeSink
) -> None:
    sink = make_sink()
    await sink.read("payments-api", "ingest")
    state.faults = FaultConfig(rate_limit=0.5, burst=1)
    await sink.read("payments-api", "other")  # spends the only token
    with pytest.raises(SinkError) as caught:
        await sink.write(record())
    assert caught.value.retryable
    assert caught.value.retry_after == 2.0  # what the engine's retry will wait
