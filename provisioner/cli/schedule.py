"""Run a cycle on a steady cadence until asked to stop; time is injected so tests never wait."""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import anyio

from provisioner.http.retry import Sleep

Clock = Callable[[], float]
Random = Callable[[], float]
Cycle = Callable[[int], Awaitable[None]]


class Stopping(Protocol):
    """What a loop asks of a stop: an anyio.Event, or the process's halt."""

    def is_set(self) -> bool: ...

    async def wait(self) -> None: ...


@dataclass(frozen=True)
class Cadence:
    """Start a cycle every `every` seconds (start to start), each wait lengthened by 0..jitter."""

    every: float
    jitter: float = 0.0

    def __post_init__(self) -> None:
        if self.every <= 0 or self.jitter < 0:
            raise ValueError("the interval must be positive and the jitter not negative")

    def delay(self, started: float, now: float, draw: float) -> float:
        """Seconds to wait after a cycle that started at `started`; 0 if it overran."""
        # Start to start keeps a steady rhythm however long cycles take; an overrun cycle is
        # followed at once, never by a burst of catch-up cycles.
        return max(0.0, started + self.every - now) + draw * self.jitter


async def run_every(
    cycle: Cycle,
    cadence: Cadence,
    stop: Stopping,
    *,
    sleep: Sleep = anyio.sleep,
    clock: Clock = time.monotonic,
    draw: Random = random.random,
) -> int:
    """Run cycle(1), cycle(2), ... until `stop` is set; return how many ran.

    A cycle in flight is never interrupted by `stop`; the wait between cycles is.
    """
    count = 0
    while not stop.is_set():
        count += 1
        started = clock()
        await cycle(count)
        if stop.is_set():
            break
        await sleep_unless_stopped(cadence.delay(started, clock(), draw()), stop, sleep)
    return count


async def sleep_unless_stopped(delay: float, stop: Stopping, sleep: Sleep = anyio.sleep) -> None:
    """Sleep `delay` seconds, or until `stop` is set, whichever comes first."""
    async with anyio.create_task_group() as group:

        async def wake_on_stop() -> None:
            await stop.wait()
            group.cancel_scope.cancel()

        group.start_soon(wake_on_stop)
        await sleep(delay)
        group.cancel_scope.cancel()
