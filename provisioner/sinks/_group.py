"""Group commit for sinks: writers queue their work, and one of them commits all that is queued.

While a commit runs (in a worker thread, syncing to disk), new writers queue up; the next one to
take the lock commits them all at once, in one thread hop and with one sync where they share a
file or directory. Each writer returns only once its own work is durable (or has failed).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import anyio

T = TypeVar("T")


@dataclass(eq=False)
class Pending(Generic[T]):
    """One writer's work, waiting for a commit; the commit sets `failure` when it failed."""

    work: T
    done: bool = False
    failure: str | None = None


class GroupCommit(Generic[T]):
    """Commits queued work in batches through `commit`, one batch at a time."""

    def __init__(
        self, commit: Callable[[list[Pending[T]]], Awaitable[None]], *, interrupted: str
    ) -> None:
        self._commit = commit
        self._interrupted = interrupted  # the failure of a commit cut short (e.g. cancelled)
        self.lock = anyio.Lock()  # held by the running commit (and by anyone it must exclude)
        self._queue: list[Pending[T]] = []
        self.commits = 0

    async def submit(self, work: T) -> str | None:
        """Queue `work` and wait until it is committed; the failure, or None once it is durable."""
        pending = Pending(work)
        self._queue.append(pending)
        try:
            async with self.lock:
                if not pending.done:  # nobody committed it while we waited: commit the queue
                    await self._run()
        finally:
            if not pending.done and pending in self._queue:  # cancelled while waiting
                self._queue.remove(pending)
        return pending.failure

    async def _run(self) -> None:
        batch, self._queue = self._queue, []
        self.commits += 1
        try:
            await self._commit(batch)
        except BaseException:
            # The writers sharing this commit must not take it for a success.
            for pending in batch:
                pending.failure = pending.failure or self._interrupted
            raise
        finally:
            for pending in batch:
                pending.done = True
