"""The scheduled loop with time injected: cadence, jitter, interruptible waits, errors."""

from __future__ import annotations

import anyio
import pytest

from provisioner.cli.schedule import Cadence, run_every, sleep_unless_stopped

pytestmark = pytest.mark.anyio


class FakeTime:
    """A clock that only moves when the loop sleeps or a cycle says it took time."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_cadence_is_start_to_start_and_an_overrun_is_followed_at_once() -> None:
    cadence = Cadence(every=60)
    assert cadence.delay(started=0, now=15, draw=0.5) == 45
    assert cadence.delay(started=0, now=90, draw=0.5) == 0


def test_jitter_lengthens_each_wait_by_its_share() -> None:
    assert Cadence(every=60, jitter=10).delay(started=0, now=15, draw=0.25) == 47.5


@pytest.mark.parametrize(("every", "jitter"), [(0, 0), (-1, 0), (10, -1)])
def test_cadence_rejects_nonsense(every: float, jitter: float) -> None:
    with pytest.raises(ValueError, match="interval"):
        Cadence(every, jitter)


async def test_cycles_run_on_the_cadence_until_stopped() -> None:
    time, stop, seen = FakeTime(), anyio.Event(), []

    async def cycle(number: int) -> None:
        seen.append((number, time.now))
        time.now += 5  # each cycle takes 5 s
        if number == 3:
            stop.set()

    cadence = Cadence(60, jitter=4)
    count = await run_every(
        cycle, cadence, stop, sleep=time.sleep, clock=time.clock, draw=lambda: 0.5
    )
    assert count == 3
    assert seen == [(1, 100.0), (2, 162.0), (3, 224.0)]
    assert time.sleeps == [57.0, 57.0]


async def test_a_stop_before_the_next_cycle_runs_no_more_cycles() -> None:
    time, stop, seen = FakeTime(), anyio.Event(), []

    async def cycle(number: int) -> None:
        seen.append(number)

    async def stopping_sleep(seconds: float) -> None:
        stop.set()  # a signal arrives during the wait
        await anyio.sleep_forever()

    count = await run_every(cycle, Cadence(60), stop, sleep=stopping_sleep, clock=time.clock)
    assert (count, seen) == (1, [1])


async def test_the_wait_ends_as_soon_as_stop_is_set() -> None:
    stop = anyio.Event()
    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(sleep_unless_stopped, 3600.0, stop)
            await anyio.wait_all_tasks_blocked()
            stop.set()


async def test_an_error_from_a_cycle_ends_the_loop() -> None:
    async def cycle(number: int) -> None:
        raise RuntimeError("configuration")

    time = FakeTime()
    with pytest.raises(RuntimeError, match="configuration"):
        await run_every(cycle, Cadence(1), anyio.Event(), sleep=time.sleep, clock=time.clock)
