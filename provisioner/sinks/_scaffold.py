"""What the sinks share: a lock per key, their reads and undos retried, remote stores' defaults.

The engine retries a sink's writes itself (it must decide what a failed write means); a sink's
reads and undos are retried here, with the provisioner's policy (provisioner.http.retry).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import anyio

from provisioner.http.retry import Sleep, retrying
from provisioner.sinks.base import SinkContext

if TYPE_CHECKING:  # the file sink's locks need no HTTP client
    import httpx

_T = TypeVar("_T")


class KeyedLocks:
    """One lock per key, made on first use: a check-then-write of one key never interleaves with
    another call on that key, while other keys go ahead."""

    def __init__(self) -> None:
        self._locks: dict[str, anyio.Lock] = {}

    def __call__(self, key: str) -> anyio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = anyio.Lock()
        return lock


class Retrier:
    """Runs a call until it succeeds, fails for good, or has had `max_attempts` tries."""

    def __init__(self, kind: str, sink: str, max_attempts: int, sleep: Sleep) -> None:
        self._kind = kind
        self._sink = sink
        self._max_attempts = max_attempts
        self._sleep = sleep

    async def __call__(self, what: str, call: Callable[[], Awaitable[_T]]) -> _T:
        """`call()`, retried when it fails transiently; `what` names it in `retry.scheduled`."""
        retry = retrying(self._max_attempts, self._sleep, f"{self._kind} {what}", sink=self._sink)
        async for attempt in retry:
            with attempt:
                return await call()
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover


class RemoteSink:
    """Base of the sinks of remote stores: readable, no lock file nor temp files, reads and undos
    retried (`_retrying`), one lock per key (`_lock`)."""

    #: The sink type, as retry log events name it (`vault read`).
    kind: ClassVar[str]

    def __init__(self, name: str, context: SinkContext, sleep: Sleep) -> None:
        self.name = name
        self.readable = True
        self._retrying = Retrier(self.kind, name, context.max_attempts, sleep)
        self._lock = KeyedLocks()

    def lock_path(self) -> None:
        """No lock: runs elsewhere reach the store too, so the planner and the store's own
        preconditions (check-and-set, resourceVersion, tags) keep them apart, not a lock."""
        return

    def sweep(self, before: float) -> int:
        """No temp files to sweep."""
        return 0


def response_json(response: httpx.Response) -> dict[str, Any]:
    """The answer's JSON object; {} when it is empty, not JSON or not an object."""
    try:
        body = response.json() if response.content else {}
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
