"""One halt: who sets it, who reads it, and that a child halt follows its parent."""

from __future__ import annotations

from datetime import UTC, datetime

import anyio
import anyio.lowlevel
import pytest

from provisioner.errors import PermissionDenied
from provisioner.model import Status
from provisioner.reconcile.engine import Engine
from provisioner.reconcile.plan import plan
from provisioner.runtime import Halt, Unobserved, current_observer, for_each, observing
from provisioner.simulator import FaultConfig, SimulatorState
from provisioner.simulator.state import ALL_PERMISSIONS, WRITE_CREDENTIALS
from tests.fakes.memory import MemorySink
from tests.support.factories import desired, no_sleep, sim_client

pytestmark = pytest.mark.anyio


def test_the_first_reason_wins_and_a_child_follows_its_parent() -> None:
    parent = Halt()
    child = parent.child()
    assert not child.is_set()
    parent.set("not started: stopped by SIGTERM")
    parent.set("a later reason")
    assert child.is_set()
    assert child.reason == parent.reason == "not started: stopped by SIGTERM"
    assert child.error is None


def test_a_childs_own_reason_stays_with_it() -> None:
    parent = Halt()
    child = parent.child()
    denied = PermissionDenied("POST", "/x", 403, "no", "perm")
    child.set("not started: refused", denied)
    assert not parent.is_set()
    assert (child.reason, child.error) == ("not started: refused", denied)


async def test_waiting_on_a_child_wakes_when_the_parent_is_set() -> None:
    parent = Halt()
    child = parent.child()
    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(child.wait)
            await anyio.wait_all_tasks_blocked()
            parent.set("stop")


async def test_an_engine_whose_halt_is_set_starts_nothing() -> None:
    state = SimulatorState()
    halt = Halt().child()
    async with sim_client(state, sleep=no_sleep) as client:
        halt.set("not started: stopped by SIGTERM")
        actions = plan([desired("a"), desired("b")], [], {}, now=datetime.now(UTC)).actions
        engine = Engine(
            client.credentials, {"local": MemorySink("local")}, concurrency=2, halt=halt
        )
        outcomes = await engine.execute(actions)
    assert {(o.status, o.error) for o in outcomes} == {
        (Status.SKIPPED, "not started: stopped by SIGTERM")
    }
    assert state.live() == []


async def test_a_refused_permission_sets_the_clients_halt_with_its_error() -> None:
    state = SimulatorState(admin_permissions=ALL_PERMISSIONS - {WRITE_CREDENTIALS})
    halt = Halt()
    async with sim_client(state, sleep=no_sleep, halt=halt) as client:
        actions = plan([desired("a")], [], {}, now=datetime.now(UTC)).actions
        engine = Engine(
            client.credentials, {"local": MemorySink("local")}, concurrency=1, halt=halt
        )
        outcomes = await engine.execute(actions)
    assert [o.status for o in outcomes] == [Status.FAILED]
    assert isinstance(halt.error, PermissionDenied)
    assert (halt.reason or "").startswith("not started: ")


async def test_the_breaker_opening_sets_the_clients_halt() -> None:
    state = SimulatorState()
    halt = Halt()
    async with sim_client(state, sleep=no_sleep, max_attempts=4, halt=halt) as client:
        await client.list_roles()
        state.faults = FaultConfig(fail_all=True)
        for _ in range(5):  # 4 attempts each: the 20th failure opens the breaker
            with pytest.raises(Exception):  # noqa: B017, PT011 - any failure; the halt is the point
                await client.credentials.list()
    assert "20 API calls in a row failed" in (halt.reason or "")


class Counting(Unobserved):
    def __init__(self) -> None:
        self.statuses: list[int] = []
        self.retries: list[str] = []

    def on_status(self, status: int) -> None:
        self.statuses.append(status)

    def on_retry(self, call: str) -> None:
        self.retries.append(call)


async def test_the_bound_observer_sees_every_status_and_retry_of_the_run() -> None:
    state = SimulatorState()
    seen = Counting()
    async with sim_client(state, sleep=no_sleep) as client:
        with observing(seen):
            await client.list_roles()
            state.faults = FaultConfig(fail_all=True)
            with pytest.raises(Exception):  # noqa: B017, PT011 - the retries are the point
                await client.credentials.list()
        assert isinstance(current_observer(), Unobserved)  # outside the block: nobody
    assert seen.statuses[0] == 200
    assert len(seen.statuses) > 2
    assert seen.retries
    assert set(seen.retries) == {"GET /auth/client-credentials"}


async def test_for_each_runs_every_item_within_its_limit() -> None:
    running, most, done = 0, 0, []

    async def work(item: int) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await anyio.lowlevel.checkpoint()
        running -= 1
        done.append(item)

    await for_each(list(range(50)), work, 4)
    assert sorted(done) == list(range(50))
    assert most == 4
    await for_each([], work, 4)  # nothing to do: returns at once
