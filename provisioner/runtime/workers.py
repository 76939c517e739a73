"""Bounded concurrency for a batch of independent items: one helper for every worker pool."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import anyio

T = TypeVar("T")


async def for_each(items: Sequence[T], work: Callable[[T], Awaitable[None]], workers: int) -> None:
    """Run `work(item)` for every item, at most `workers` at once, in the items' order of start.

    A fixed set of workers takes items from a queue, so a batch of 100,000 items costs
    `workers` tasks, not 100,000.
    """
    if not items:
        return
    send, receive = anyio.create_memory_object_stream[T](len(items))
    for item in items:
        send.send_nowait(item)
    send.close()

    async def worker() -> None:
        async for item in receive:
            await work(item)

    async with receive, anyio.create_task_group() as group:
        for _ in range(max(1, min(workers, len(items)))):
            group.start_soon(worker)
