"""A failed replace puts back what each sink held: consumers keep the old, still live, secret."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from dotenv import dotenv_values
from pydantic import SecretStr

from provisioner.errors import SinkError
from provisioner.model import DesiredCredential, SinkRecord, Status
from provisioner.reconcile.engine import Engine
from provisioner.reconcile.plan import plan
from provisioner.simulator import (
    VAULT_ROOT_TOKEN,
    SimulatorState,
    VaultState,
    create_vault_app,
)
from provisioner.sinks import NOTHING, Previous, Sink
from provisioner.sinks._unsettled import Unsettled
from provisioner.sinks.base import SinkContext
from provisioner.sinks.env import EnvSink, EnvSinkOptions
from provisioner.sinks.file import FileSink, FileSinkOptions
from provisioner.sinks.vault import VaultSink, VaultSinkOptions
from provisioner.streamkap.client import StreamkapClient
from tests.fakes.memory import MemorySink
from tests.plugin_sink.provisioner_jsonfile_sink import JsonFileSink, JsonFileSinkOptions
from tests.support.factories import desired, no_sleep

pytestmark = pytest.mark.anyio
KEY = "api/ingest"
SECRET = "an-old-secret-value-42"

Held = Callable[[], tuple[str | None, str | None]]  # (client_id, secret) a sink holds for KEY


@dataclass
class Kept:
    """A working sink under test, and how to read back what it holds in clear."""

    sink: Sink
    held: Held


async def file_sink(tmp: Path, _stack: AsyncExitStack) -> Kept:
    sink = FileSink("kept", FileSinkOptions(path="secrets"), SinkContext(cwd=tmp))

    def held() -> tuple[str | None, str | None]:
        path = tmp / "secrets" / "api" / "ingest.json"
        if not path.exists():
            return None, None
        document = json.loads(path.read_text())
        return document["client_id"], document["secret"]

    return Kept(sink, held)


async def env_sink(tmp: Path, _stack: AsyncExitStack) -> Kept:
    (tmp / "app.env").write_text("export OTHER=1\n")
    sink = EnvSink("kept", EnvSinkOptions(path="app.env"), SinkContext(cwd=tmp))

    def held() -> tuple[str | None, str | None]:
        values = dotenv_values(tmp / "app.env")
        assert values.get("OTHER") == "1"
        return values.get("STREAMKAP_API_INGEST_CLIENT_ID"), values.get(
            "STREAMKAP_API_INGEST_SECRET"
        )

    return Kept(sink, held)


async def vault_sink(tmp: Path, stack: AsyncExitStack) -> Kept:
    vault = VaultState()
    context = SinkContext(
        cwd=tmp,
        environ={"VAULT_TOKEN": VAULT_ROOT_TOKEN},
        transport=httpx.ASGITransport(app=create_vault_app(vault)),
    )
    options = VaultSinkOptions(address="https://vault.example:8200", mount="secret")
    sink = VaultSink("kept", options, context, sleep=no_sleep)
    stack.push_async_callback(sink.aclose)

    def held() -> tuple[str | None, str | None]:
        data = vault.secret("api/ingest")
        return (data["client_id"], data["secret"]) if data else (None, None)

    return Kept(sink, held)


async def memory_sink(_tmp: Path, _stack: AsyncExitStack) -> Kept:
    sink = MemorySink("kept")

    def held() -> tuple[str | None, str | None]:
        record = sink.records.get(KEY)
        return (record.client_id, sink.secret_of(KEY)) if record else (None, None)

    return Kept(sink, held)


async def plugin_sink(tmp: Path, _stack: AsyncExitStack) -> Kept:
    sink = JsonFileSink("kept", JsonFileSinkOptions(path="all.json"), SinkContext(cwd=tmp))

    def held() -> tuple[str | None, str | None]:
        entry = json.loads((tmp / "all.json").read_text()).get(KEY)
        return (entry["client_id"], entry["secret"]) if entry else (None, None)

    return Kept(sink, held)


MAKERS: dict[str, Callable[[Path, AsyncExitStack], Awaitable[Kept]]] = {
    "file": file_sink,
    "env": env_sink,
    "vault": vault_sink,
    "memory": memory_sink,
    "plugin": plugin_sink,
}


@pytest.fixture(params=sorted(MAKERS))
async def kept(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Kept]:
    async with AsyncExitStack() as stack:
        yield await MAKERS[request.param](tmp_path, stack)


def wanted(service_id: str) -> DesiredCredential:
    """A service_id cannot change in place: a new one means a replace."""
    roles = ("role-read-only",)
    return desired("ingest", roles=roles, service_id=service_id, sinks=("kept", "broken"))


async def run(client: StreamkapClient, sinks: dict[str, Sink], wish: DesiredCredential) -> Status:
    """Observe, plan and execute once, as `apply` does."""
    holdings = {KEY: {name: await sinks[name].read("api", "ingest") for name in wish.sinks}}
    actions = plan([wish], await client.credentials.list(), holdings, now=datetime.now(UTC))
    engine = Engine(client.credentials, sinks, concurrency=4, max_attempts=3, sleep=no_sleep)
    (outcome,) = await engine.execute(actions.actions)
    return outcome.status


async def test_a_failed_replace_leaves_the_working_sink_holding_the_old_record(
    kept: Kept, client: StreamkapClient, state: SimulatorState
) -> None:
    """A replace whose second sink refuses the new record: the first gets its old one back."""
    broken = MemorySink("broken")
    sinks: dict[str, Sink] = {"kept": kept.sink, "broken": broken}
    assert await run(client, sinks, wanted("svc-1")) is Status.OK
    (old,) = state.live()
    assert kept.held() == (old.client_id, old.secret)
    broken.fail_writes = True
    assert await run(client, sinks, wanted("svc-2")) is Status.FAILED
    assert [c.client_id for c in state.live()] == [old.client_id]  # the new one was taken back
    assert kept.held() == (old.client_id, old.secret)  # and the consumer's secret still works
    broken.fail_writes = False
    assert await run(client, sinks, wanted("svc-2")) is Status.OK
    (new,) = state.live()
    assert new.client_id != old.client_id
    assert kept.held() == (new.client_id, new.secret)


async def test_an_undo_of_a_first_delivery_leaves_the_working_sink_empty(
    kept: Kept, client: StreamkapClient, state: SimulatorState
) -> None:
    """Nothing was there before a create: the undo removes the record, as before."""
    sinks: dict[str, Sink] = {"kept": kept.sink, "broken": MemorySink("broken", fail_writes=True)}
    assert await run(client, sinks, wanted("svc-1")) is Status.FAILED
    assert state.live() == []
    assert kept.held() == (None, None)


async def test_an_undo_leaves_a_record_someone_else_wrote_since(kept: Kept) -> None:
    """Restore acts only while the sink still holds the client_id being undone."""
    await kept.sink.write(record("cid-old"))
    previous = await kept.sink.write(record("cid-new"))
    assert previous.client_id == "cid-old"
    await kept.sink.write(record("cid-theirs"))
    await kept.sink.restore("api", "ingest", "cid-new", previous)
    assert kept.held() == ("cid-theirs", SECRET)
    await kept.sink.restore("api", "ingest", "cid-theirs", NOTHING)
    assert kept.held() == (None, None)


async def test_what_a_write_replaced_never_shows_its_secret(kept: Kept) -> None:
    await kept.sink.write(record("cid-old"))
    previous = await kept.sink.write(record("cid-new"))
    assert SECRET not in repr(previous)
    assert SECRET not in str(previous)
    assert previous != Previous("cid-other")


def record(client_id: str) -> SinkRecord:
    return SinkRecord(
        service="api", credential="ingest", client_id=client_id, secret=SecretStr(SECRET)
    )


class FirstWriteAnswerLost(httpx.AsyncBaseTransport):
    """Lets the first Vault write through, then drops its answer: the write landed unseen."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.lost = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.method == "POST" and not self.lost:
            self.lost += 1
            raise httpx.RemoteProtocolError("connection closed", request=request)
        return response


async def test_a_vault_write_whose_answer_was_lost_still_undoes_to_the_old_version() -> None:
    """The retry finds its own record; the undo still puts back the version before it."""
    vault = VaultState()
    vault.write(("", "secret", "api/ingest"), record("cid-old").to_document(), cas=0)
    lossy = FirstWriteAnswerLost(httpx.ASGITransport(app=create_vault_app(vault)))
    context = SinkContext(
        cwd=Path.cwd(), environ={"VAULT_TOKEN": VAULT_ROOT_TOKEN}, transport=lossy
    )
    options = VaultSinkOptions(address="https://vault.example:8200", mount="secret")
    sink = VaultSink("kept", options, context, sleep=no_sleep)
    try:
        assert await sink.read("api", "ingest") == "cid-old"
        with pytest.raises(SinkError):
            await sink.write(record("cid-new"))
        previous = await sink.write(record("cid-new"))  # the engine's retry
        assert lossy.lost == 1
        assert previous.client_id == "cid-old"
        await sink.restore("api", "ingest", "cid-new", previous)
    finally:
        await sink.aclose()
    assert vault.secret("api/ingest")["client_id"] == "cid-old"


async def test_a_write_over_a_deleted_vault_version_undoes_to_nothing(tmp_path: Path) -> None:
    """A soft-deleted latest version held nothing: the undo soft-deletes, restoring no data."""
    async with AsyncExitStack() as stack:
        kept = await vault_sink(tmp_path, stack)
        await undo_after_a_delete(kept)


async def undo_after_a_delete(kept: Kept) -> None:
    await kept.sink.write(record("cid-old"))
    await kept.sink.delete("api", "ingest", "cid-old")
    previous = await kept.sink.write(record("cid-new"))
    assert previous.client_id is None
    await kept.sink.restore("api", "ingest", "cid-new", previous)
    assert kept.held() == (None, None)


def test_a_retry_after_a_write_that_landed_reports_what_the_failed_attempt_replaced() -> None:
    unsettled = Unsettled()
    old = Previous("cid-old", b"old bytes")
    unsettled.failed(KEY, old)
    assert unsettled.settled(KEY, "cid-new", Previous("cid-new", b"new bytes")) is old
    unsettled.failed(KEY, old)
    seen_again = Previous("cid-old", b"old bytes")  # the failed attempt never landed
    assert unsettled.settled(KEY, "cid-new", seen_again) is seen_again
    assert unsettled.settled(KEY, "cid-new", NOTHING) is NOTHING  # settled: forgotten
