"""Awaiting independent calls at once, with plain errors rather than exception groups."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar, cast

import anyio

A = TypeVar("A")
B = TypeVar("B")


async def both(first: Awaitable[A], second: Awaitable[B]) -> tuple[A, B]:
    """Await two calls concurrently; if one fails, the other is cancelled and its error raised."""
    results: list[Any] = [None, None]
    errors: list[Exception] = []

    async def run(index: int, call: Awaitable[Any], group: anyio.abc.TaskGroup) -> None:
        try:
            results[index] = await call
        except Exception as exc:  # kept out of the task group, so it surfaces as itself
            errors.append(exc)
            group.cancel_scope.cancel()

    async with anyio.create_task_group() as group:
        group.start_soon(run, 0, first, group)
        group.start_soon(run, 1, second, group)
    if errors:
        raise errors[0]
    return cast(A, results[0]), cast(B, results[1])
