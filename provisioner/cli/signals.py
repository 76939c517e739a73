"""The one place SIGTERM and SIGINT become a stop: the first asks to stop, the second aborts.

What "stop" means is the caller's: `apply` starts no new action, `run` starts no new cycle,
`simulate` shuts its servers down. A second signal cancels whatever the block is still doing
(what a re-run repairs, as after SIGKILL).
"""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio

from provisioner.runtime import Halt

SIGNALS = (signal.SIGTERM, signal.SIGINT)

Notice = Callable[[str], None]  # told the signal's name


@dataclass
class Stop:
    """Set once a first signal came; `aborted` once a second one cut the block short."""

    requested: Halt = field(default_factory=Halt)  # the process's halt; runs take children
    aborted: bool = False


def _quiet(name: str) -> None:
    return None


@asynccontextmanager
async def stop_on_signals(
    *, on_stop: Notice = _quiet, on_abort: Notice = _quiet
) -> AsyncIterator[Stop]:
    """Within the block, a first signal sets `stop.requested`; a second cancels the block."""
    stop = Stop()
    async with anyio.create_task_group() as group:
        with anyio.open_signal_receiver(*SIGNALS) as signals:

            async def watch() -> None:
                async for signum in signals:
                    name = signal.Signals(signum).name
                    if stop.requested.is_set():
                        stop.aborted = True
                        on_abort(name)
                        group.cancel_scope.cancel()
                        return
                    on_stop(name)
                    stop.requested.set(f"not started: stopped by {name}")

            group.start_soon(watch)
            yield stop
            group.cancel_scope.cancel()
