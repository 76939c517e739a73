"""The retry strategies' decisions, without waiting."""

from __future__ import annotations

import pytest
from tenacity import RetryCallState, wait_fixed

from provisioner.errors import ApiError, RateLimited, SinkError
from provisioner.http.retry import is_transient, parse_retry_after, wait_retry_after


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
