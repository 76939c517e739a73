"""Pruning an orphan takes its record out of the sinks too, and only after the API delete."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from provisioner.model import Action, Kind, Reason, SinkRecord, Status, marked_description
from provisioner.reconcile.engine import Engine
from provisioner.simulator import FaultConfig, SimulatorState
from provisioner.streamkap.client import StreamkapClient
from tests.fakes.memory import MemorySink
from tests.support.factories import no_sleep

pytestmark = pytest.mark.anyio


@pytest.fixture
def max_attempts() -> int:
    return 2


def record(client_id: str, key: str = "old/gone") -> SinkRecord:
    service, credential = key.split("/")
    return SinkRecord(service, credential, client_id, SecretStr("s3cret-" + client_id))


async def prune(client: StreamkapClient, sinks: dict[str, MemorySink], client_id: str) -> Status:
    orphan = Action(Kind.DELETE, "old/gone", Reason.ORPHAN, None, client_id)
    engine = Engine(client.credentials, sinks, concurrency=2, max_attempts=2, sleep=no_sleep)
    (outcome,) = await engine.execute([orphan])
    return outcome.status


async def test_an_orphans_record_leaves_every_readable_sink_that_holds_it(
    client: StreamkapClient, state: SimulatorState
) -> None:
    orphan = state.add_credential(description=marked_description(None, "old/gone"))
    holding, newer, write_only = MemorySink("a"), MemorySink("b"), MemorySink("c", readable=False)
    holding.records["old/gone"] = record(orphan.client_id)
    newer.records["old/gone"] = record("cc_newer")  # another credential of that key: kept
    sinks = {"a": holding, "b": newer, "c": write_only}
    assert await prune(client, sinks, orphan.client_id) == Status.OK
    assert state.get(orphan.client_id) is None
    assert holding.records == {}
    assert newer.records["old/gone"].client_id == "cc_newer"
    assert write_only.deletes == []


async def test_a_failed_api_delete_leaves_the_sinks_alone(
    client: StreamkapClient, state: SimulatorState
) -> None:
    orphan = state.add_credential(description=marked_description(None, "old/gone"))
    sink = MemorySink("a")
    sink.records["old/gone"] = record(orphan.client_id)
    state.faults = FaultConfig(error_rate=1.0)
    assert await prune(client, {"a": sink}, orphan.client_id) == Status.FAILED
    assert sink.deletes == []
