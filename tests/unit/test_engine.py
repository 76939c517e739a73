"""The engine against the in-process simulator and in-memory sinks: deliver or undo, once."""

from __future__ import annotations

from datetime import UTC, datetime

import anyio
import pytest

from provisioner.model import DesiredCredential, SinkRecord, Status, marked_description
from provisioner.reconcile.engine import Engine
from provisioner.reconcile.plan import plan
from provisioner.simulator import (
    FaultConfig,
    SimulatorState,
)
from provisioner.sinks import Previous
from provisioner.streamkap.client import StreamkapClient
from tests.fakes.memory import MemorySink
from tests.support.factories import desired
from tests.support.factories import no_sleep as no_wait


def wanted(name: str, sinks: tuple[str, ...] = ("a", "b")) -> DesiredCredential:
    return desired(name, sinks=sinks)


@pytest.fixture
def max_attempts() -> int:
    return 4  # the client's attempts, counted below


async def converge(
    client: StreamkapClient, sinks: dict[str, MemorySink], desired: list[DesiredCredential]
) -> list[Status]:
    """Observe, plan and execute once, as `apply` does."""
    holdings = {
        d.key: {n: await sinks[n].read(d.service, d.name) for n in d.sinks} for d in desired
    }
    actions = plan(desired, await client.credentials.list(), holdings, now=datetime.now(UTC))
    engine = Engine(client.credentials, sinks, concurrency=8, max_attempts=4, sleep=no_wait)
    return [outcome.status for outcome in await engine.execute(actions.actions)]


@pytest.mark.anyio
async def test_every_sink_gets_the_secret(client: StreamkapClient, state: SimulatorState) -> None:
    sinks = {"a": MemorySink("a"), "b": MemorySink("b")}
    desired = [wanted(f"c{i}") for i in range(10)]
    assert await converge(client, sinks, desired) == [Status.OK] * 10
    for record in state.live():
        key = record.description.split(":", 1)[1].rstrip("]")  # type: ignore[union-attr]
        assert sinks["a"].secret_of(key) == record.secret
        assert sinks["b"].secret_of(key) == record.secret


@pytest.mark.anyio
async def test_a_sink_that_keeps_failing_undoes_the_credential(
    client: StreamkapClient, state: SimulatorState
) -> None:
    """Disk full on one sink: the new credential is deleted and the other sink forgets it."""
    full = MemorySink("b", fail_writes=lambda key: key == "api/doomed")
    sinks = {"a": MemorySink("a"), "b": full}
    statuses = await converge(client, sinks, [wanted("doomed"), wanted("fine")])
    assert sorted(statuses) == [Status.FAILED, Status.OK]
    assert [r.description for r in state.live()] == [marked_description(None, "api/fine")]
    assert "api/doomed" not in sinks["a"].records
    assert sinks["a"].restores  # the delivered copy was taken back


@pytest.mark.anyio
async def test_a_sink_failing_for_a_while_is_retried(client: StreamkapClient) -> None:
    failures = iter([True, True, False])
    flaky = MemorySink("b", fail_writes=lambda _key: next(failures))
    sinks = {"a": MemorySink("a"), "b": flaky}
    assert await converge(client, sinks, [wanted("c")]) == [Status.OK]
    assert len(flaky.records) == 1


@pytest.mark.anyio
async def test_dropped_creates_leave_exactly_one_credential(
    client: StreamkapClient, state: SimulatorState
) -> None:
    await client.list_roles()
    state.faults = FaultConfig(drop_after_create_rate=0.5, error_after_create_rate=0.2, seed=3)
    sinks = {"a": MemorySink("a"), "b": MemorySink("b")}
    desired = [wanted(f"c{i}") for i in range(30)]
    await converge(client, sinks, desired)
    state.faults = FaultConfig()
    await converge(client, sinks, desired)  # repairs whatever ran out of attempts
    keys = [r.description or "" for r in state.live()]
    assert sorted(keys) == sorted(marked_description(None, d.key) for d in desired)
    state.reset_calls()
    assert await converge(client, sinks, desired) == []  # converged: no write action left
    assert state.write_calls() == []


@pytest.mark.anyio
async def test_replace_delivers_then_deletes_the_old_credential(
    client: StreamkapClient, state: SimulatorState
) -> None:
    sinks = {"a": MemorySink("a"), "b": MemorySink("b")}
    await converge(client, sinks, [wanted("c")])
    (old,) = state.live()
    del sinks["a"].records["api/c"]  # every sink lost its secret: no sibling to restore from
    del sinks["b"].records["api/c"]
    assert await converge(client, sinks, [wanted("c")]) == [Status.OK]
    (new,) = state.live()
    assert new.client_id != old.client_id
    assert sinks["a"].secret_of("api/c") == sinks["b"].secret_of("api/c") == new.secret


@pytest.mark.anyio
async def test_unlocked_overlapping_runs_still_converge(
    client: StreamkapClient, state: SimulatorState
) -> None:
    """Two runs on different machines share one sink and no lock: the next run tidies up."""
    sinks = {"a": MemorySink("a"), "b": MemorySink("b")}
    desired = [wanted(f"c{i}") for i in range(10)]
    async with anyio.create_task_group() as group:
        group.start_soon(converge, client, sinks, desired)
        group.start_soon(converge, client, sinks, desired)
    assert len(state.live()) == 20  # both created everything
    await converge(client, sinks, desired)
    live = {r.client_id: r for r in state.live()}
    assert len(live) == 10
    for d in desired:
        held = sinks["a"].records[d.key].identity
        assert sinks["b"].records[d.key].client_id == held
        assert sinks["a"].secret_of(d.key) == live[held].secret


@pytest.mark.anyio
async def test_when_the_api_is_down_the_run_stops_starting_work(
    client: StreamkapClient, state: SimulatorState
) -> None:
    sinks = {"a": MemorySink("a"), "b": MemorySink("b")}
    desired = [wanted(f"c{i}") for i in range(100)]
    actions = plan(desired, [], {}, now=datetime.now(UTC)).actions
    await client.list_roles()
    state.faults = FaultConfig(fail_all=True)
    engine = Engine(
        client.credentials, sinks, concurrency=4, max_attempts=4, sleep=no_wait, failure_limit=5
    )
    outcomes = await engine.execute(actions)
    failed = [o for o in outcomes if o.status is Status.FAILED]
    skipped = [o for o in outcomes if o.status is Status.SKIPPED]
    assert 5 <= len(failed) <= 5 + 2 * 4  # the limit, plus what was in progress (2 x concurrency)
    assert len(skipped) == 100 - len(failed)
    assert "5 actions in a row failed" in (skipped[0].error or "")
    # The client's breaker opened after 20 refused calls: the rest failed without calling.
    assert len(state.calls()) <= 1 + 20 + 2 * 4


@pytest.mark.anyio
async def test_a_success_resets_the_breaker(client: StreamkapClient) -> None:
    """Scattered failures (bad input for some credentials) never stop the run."""
    broken = MemorySink("b", fail_writes=lambda key: int(key.split("c")[-1]) % 2 == 0)
    sinks = {"a": MemorySink("a"), "b": broken}
    desired = [wanted(f"c{i}") for i in range(40)]
    actions = plan(desired, [], {}, now=datetime.now(UTC)).actions
    engine = Engine(
        client.credentials, sinks, concurrency=1, max_attempts=2, sleep=no_wait, failure_limit=3
    )
    outcomes = await engine.execute(actions)
    assert sorted(o.status for o in outcomes).count(Status.SKIPPED) == 0


@pytest.mark.anyio
async def test_giving_up_on_ambiguous_creates_leaves_nothing_behind(
    client: StreamkapClient, state: SimulatorState
) -> None:
    """Every create commits and loses its answer: the run fails, but no secretless credential."""
    await client.list_roles()
    state.faults = FaultConfig(drop_after_create_rate=1.0)
    sinks = {"a": MemorySink("a"), "b": MemorySink("b")}
    assert await converge(client, sinks, [wanted("c")]) == [Status.FAILED]
    assert len(state.calls("POST", "/auth/client-credentials")) == 4  # max_attempts
    assert state.live() == []


class BrokenPluginSink(MemorySink):
    """A third-party sink that lets a raw OSError escape instead of a SinkError."""

    async def write(self, record: SinkRecord) -> Previous:
        if record.credential == "doomed":
            raise OSError(28, "No space left on device")
        return await super().write(record)


@pytest.mark.anyio
async def test_an_unexpected_error_fails_one_credential_not_the_run(
    client: StreamkapClient, state: SimulatorState
) -> None:
    sinks = {"a": MemorySink("a"), "b": BrokenPluginSink("b")}
    desired = [wanted("doomed"), *(wanted(f"c{i}") for i in range(5))]
    actions = plan(desired, [], {}, now=datetime.now(UTC)).actions
    engine = Engine(client.credentials, sinks, concurrency=4, max_attempts=2, sleep=no_wait)
    outcomes = {o.action.key: o for o in await engine.execute(actions)}
    assert outcomes["api/doomed"].status is Status.FAILED
    assert "unexpected OSError" in (outcomes["api/doomed"].error or "")
    assert [o.status for k, o in outcomes.items() if k != "api/doomed"] == [Status.OK] * 5
    assert len(state.live()) == 5  # the doomed one was undone
