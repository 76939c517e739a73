"""When to retry a call and how long to wait: composable tenacity strategies, no I/O."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import structlog
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from provisioner.errors import ApiError, RateLimited, RequestFailed, SinkError, Stopped
from provisioner.errors import parse_retry_after as parse_retry_after  # re-exported: HTTP callers
from provisioner.runtime.halt import Halt
from provisioner.runtime.observer import current_observer

RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
MAX_WAIT = 30.0

log = structlog.get_logger("provisioner.http.retry")

Sleep = Callable[[float], Awaitable[None]]


def is_transient(exc: BaseException) -> bool:
    """Whether repeating the same call may succeed (never for other 4xx)."""
    if isinstance(exc, ApiError):
        return exc.status in RETRYABLE_STATUSES
    if isinstance(exc, SinkError):
        return exc.retryable
    return isinstance(exc, RequestFailed) and exc.retryable


class wait_retry_after(wait_base):  # named like tenacity's own strategies
    """Wait what the server asked for (capped), else defer to the fallback strategy."""

    def __init__(self, fallback: wait_base, cap: float = MAX_WAIT) -> None:
        self.fallback = fallback
        self.cap = cap

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None else None
        hint = exc.retry_after if isinstance(exc, RateLimited | SinkError) else None
        if hint is not None:
            return min(hint, self.cap)
        return float(self.fallback(retry_state))


class StoppingSleep:
    """A backoff sleep tied to a run's halt: no retry once the run is stopping.

    Given to `retrying`, it stops the retries of a call whose attempt failed after the halt was
    set (its error is raised as it is), and a halt set during the backoff cuts it short and
    raises Stopped: tenacity lets an error of its sleep out of the retry loop.
    """

    def __init__(self, sleep: Sleep, halt: Halt) -> None:
        self._sleep = sleep
        self.halt = halt

    async def __call__(self, seconds: float) -> None:
        if not self.halt.is_set():
            async with anyio.create_task_group() as group:
                group.start_soon(_cancel_when_set, self.halt, group.cancel_scope)
                await self._sleep(seconds)
                group.cancel_scope.cancel()
        if self.halt.is_set():
            raise Stopped(f"not retried: {stop_reason(self.halt)}")


def stop_reason(halt: Halt) -> str:
    """Why a halted run retries nothing, as errors say it (`stopped by SIGTERM`)."""
    return (halt.reason or "stopping").removeprefix("not started: ")


def stopping_sleep(sleep: Sleep, halt: Halt) -> StoppingSleep:
    """`sleep` for backoffs, tied to `halt` (see StoppingSleep)."""
    return StoppingSleep(sleep, halt)


async def _cancel_when_set(halt: Halt, scope: anyio.CancelScope) -> None:
    await halt.wait()
    scope.cancel()


class _halted(stop_base):  # named like tenacity's own strategies
    def __init__(self, halt: Halt) -> None:
        self.halt = halt

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self.halt.is_set()


def retrying(
    max_attempts: int,
    sleep: Sleep,
    what: str,
    *,
    retry_if: Callable[[BaseException], bool] = is_transient,
    **fields: Any,
) -> AsyncRetrying:
    """Full-jitter exponential backoff capped at 30 s, honouring Retry-After, transient only;
    with a StoppingSleep, nothing is retried once its halt is set."""
    stop: stop_base = stop_after_attempt(max_attempts)
    if isinstance(sleep, StoppingSleep):
        stop = stop | _halted(sleep.halt)
    return AsyncRetrying(
        retry=retry_if_exception(retry_if),
        wait=wait_retry_after(wait_random_exponential(multiplier=0.5, max=MAX_WAIT)),
        stop=stop,
        sleep=sleep,
        before_sleep=_log_retry(what, fields),
        reraise=True,
    )


def _log_retry(what: str, fields: dict[str, Any]) -> Callable[[RetryCallState], None]:
    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        current_observer().on_retry(what)  # the run's metrics count retries by call
        log.info(
            "retry.scheduled",
            call=what,
            attempt=state.attempt_number,
            wait=round(wait, 3),
            error=str(exc),
            **fields,
        )

    return before_sleep
