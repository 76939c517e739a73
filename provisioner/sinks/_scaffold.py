"""What the sinks share: a lock per key, their reads and undos retried, remote stores' defaults.

The engine retries a sink's writes itself (it must decide what a failed write means); a sink's
reads and undos are retried here, with the provisioner's policy (provisioner.http.retry), and
not once the run is stopping (its halt is set). A remote sink's `check` is one call, bounded by
one deadline, and not retried when the store could not be reached at all.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import anyio

from provisioner.errors import SinkError, Stopped
from provisioner.http.retry import Sleep, is_transient, retrying, stopping_sleep
from provisioner.model import DEFAULT_OWNER
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


class Unreachable(SinkError):
    """The store could not be reached at all (refused, no such host, no connection in time):
    nothing was sent. Retried like any transient failure, except by a check: a store that does
    not answer the first call of a run is misconfigured more often than briefly away."""

    def __init__(self, sink: str, message: str) -> None:
        super().__init__(sink, message, retryable=True)


def _reached_and_transient(exc: BaseException) -> bool:
    return is_transient(exc) and not isinstance(exc, Unreachable)


class Retrier:
    """Runs a call until it succeeds, fails for good, or has had `max_attempts` tries."""

    def __init__(self, kind: str, sink: str, max_attempts: int, sleep: Sleep) -> None:
        self._kind = kind
        self._sink = sink
        self._max_attempts = max_attempts
        self._sleep = sleep

    async def __call__(
        self,
        what: str,
        call: Callable[[], Awaitable[_T]],
        retry_if: Callable[[BaseException], bool] = is_transient,
    ) -> _T:
        """`call()`, retried when it fails transiently; `what` names it in `retry.scheduled`."""
        retry = retrying(
            self._max_attempts,
            self._sleep,
            f"{self._kind} {what}",
            retry_if=retry_if,
            sink=self._sink,
        )
        try:
            async for attempt in retry:
                with attempt:
                    return await call()
        except Stopped as exc:  # the run's halt cut a backoff short: a sink's error, like any
            raise SinkError(self._sink, f"{self._kind} {what}: {exc}") from None
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover


class RemoteSink:
    """Base of the sinks of remote stores: readable, no lock file nor temp files, reads and undos
    retried (`_retrying`), one lock per key (`_lock`)."""

    #: The sink type, as retry log events name it (`vault read`).
    kind: ClassVar[str]

    def __init__(self, name: str, context: SinkContext, sleep: Sleep) -> None:
        self.name = name
        self.readable = True
        if context.halt is not None:  # a run that is stopping retries nothing
            sleep = stopping_sleep(sleep, context.halt)
        self._retrying = Retrier(self.kind, name, context.max_attempts, sleep)
        self._lock = KeyedLocks()
        self._deadline = context.timeout
        #: Whose entries this sink writes, and which it may overwrite (see `check_owner`).
        self.owner = context.owner

    async def _checked(self, what: str, call: Callable[[], Awaitable[object]]) -> SinkError | None:
        """The error `call()` (a check's one read) ends with, or None when it succeeds.

        Retried while the store answers that it is busy, all within one deadline (the API's,
        PROVISIONER_TIMEOUT); a store that cannot be reached fails the check at once.
        """
        with anyio.move_on_after(self._deadline):
            try:
                await self._retrying(what, call, retry_if=_reached_and_transient)
            except SinkError as exc:
                return exc
            return None
        return SinkError(
            self.name, f"{what}: no answer within {self._deadline:g} s (PROVISIONER_TIMEOUT)"
        )

    def check_owner(self, found: str | None, where: str) -> None:
        """Refuse an entry another owner wrote; one that records no owner (written before owners
        were recorded) is the default owner's, so existing deployments keep working."""
        theirs = found or DEFAULT_OWNER
        if theirs != self.owner:
            raise SinkError(
                self.name,
                f"{where} belongs to owner {theirs!r}, not {self.owner!r}: refusing to "
                "overwrite it (give each owner its own prefix, namespace or name template)",
            )

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
