"""The retry strategies' decisions, without waiting."""

from __future__ import annotations

import anyio
import pytest
from tenacity import RetryCallState, wait_fixed

from provisioner.errors import ApiError, RateLimited, SinkError, Stopped
from provisioner.http.retry import (
    is_transient,
    parse_retry_after,
    retrying,
    stopping_sleep,
    wait_retry_after,
)
from provisioner.runtime import Halt


def state_failing_with(exc: BaseException) -> RetryCallState:
    state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
    state.set_exception((type(exc), exc, None))
    return state


WAIT = wait_retry_after(wait_fixed(7), cap=30)


@pytest.mark.parametrize(
    ("exc", "seconds"),
    [
        (RateLimited("GET", "/x", 429, None, 2.0), 2.0),
        (RateLimited("GET", "/x", 429, None, 600.0), 30.0),  # capped
        (RateLimited("GET", "/x", 429, None, None), 7.0),  # no hint: backoff
        (SinkError("vault", "HTTP 429", retryable=True, retry_after=3.0), 3.0),
        (ApiError("GET", "/x", 503, None), 7.0),
    ],
)
def test_the_servers_hint_wins_over_backoff(exc: BaseException, seconds: float) -> None:
    assert WAIT(state_failing_with(exc)) == seconds


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("Thu, 01 Jan 2026 00:00:10 GMT", now=1767225600.0) == 10.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_only_transient_failures_are_retried() -> None:
    assert is_transient(ApiError("GET", "/x", 503, None))
    assert not is_transient(ApiError("POST", "/x", 422, []))
    assert is_transient(SinkError("s", "busy", retryable=True))
    assert not is_transient(SinkError("s", "denied"))


@pytest.mark.anyio
async def test_a_halt_during_the_backoff_ends_the_retries() -> None:
    halt, attempts = Halt(), []

    async def sleep_until_halted(seconds: float) -> None:
        halt.set("not started: stopped by SIGTERM")  # the signal comes while it sleeps
        await anyio.sleep_forever()  # cut short by the halt, or the test hangs

    async def failing_call() -> None:
        async for attempt in retrying(6, stopping_sleep(sleep_until_halted, halt), "GET /x"):
            with attempt:
                attempts.append(1)
                raise ApiError("GET", "/x", 503, None)

    with pytest.raises(Stopped, match="not retried: stopped by SIGTERM"):
        await failing_call()
    assert len(attempts) == 1


@pytest.mark.anyio
async def test_a_run_already_halted_sleeps_no_backoff() -> None:
    halt, slept = Halt(), []
    halt.set("not started: GET /x refused")

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    with pytest.raises(Stopped, match="not retried: GET /x refused"):
        await stopping_sleep(sleep, halt)(5.0)
    assert slept == []
