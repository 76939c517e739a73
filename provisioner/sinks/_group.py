"""Group commit for sinks: callers queue their work, and one of them runs all that is queued.

While a batch runs (in a worker thread, syncing to disk), new callers queue up; the next one to
take the lock runs them all at once, in one thread hop and with one sync where they share a file
or directory. Each caller returns only once its own work is done (durable, for a write) or has
failed. Reads batch the same way: thousands of small files cost a few thread hops, not thousands.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import anyio

W = TypeVar("W")
R = TypeVar("R")


@dataclass(eq=False)
class Pending(Generic[W, R]):
    """One caller's work, waiting for a batch; the batch sets `result`, or `failure`."""

    work: W = field(repr=False)  # may hold a secret
    done: bool = False
    failure: str | None = None
    result: R | None = None


class GroupCommit(Generic[W, R]):
    """Runs queued work in batches through `run`, one batch at a time."""

    def __init__(
        self, run: Callable[[list[Pending[W, R]]], Awaitable[None]], *, interrupted: str
    ) -> None:
        self._run_batch = run
        self._interrupted = interrupted  # the failure of a batch cut short (e.g. cancelled)
        self.lock = anyio.Lock()  # held by the running batch (and by anyone it must exclude)
        self._queue: list[Pending[W, R]] = []
        self.batches = 0

    async def submit(self, work: W) -> Pending[W, R]:
        """Queue `work` and wait until a batch has done it; check the `failure` returned."""
        pending: Pending[W, R] = Pending(work)
        self._queue.append(pending)
        try:
            async with self.lock:
                if not pending.done:  # nobody ran it while we waited: run the queue
                    await self._run()
        finally:
            if not pending.done and pending in self._queue:  # cancelled while waiting
                self._queue.remove(pending)
        return pending

    async def _run(self) -> None:
        batch, self._queue = self._queue, []
        self.batches += 1
        try:
            # Shielded: the batch is other callers' work too (a cancelled caller must not fail
            # theirs), and once in its worker thread it cannot be stopped anyway.
            with anyio.CancelScope(shield=True):
                await self._run_batch(batch)
        except BaseException:
            # The callers sharing this batch must not take it for a success.
            for pending in batch:
                pending.failure = pending.failure or self._interrupted
            raise
        finally:
            for pending in batch:
                pending.done = True
