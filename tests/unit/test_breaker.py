"""The circuit breaker's decisions, without any I/O."""

from __future__ import annotations

import pytest

from provisioner.errors import ApiError, CircuitOpen, RateLimited, RequestFailed
from provisioner.streamkap.breaker import CircuitBreaker

DOWN = ApiError("GET", "/auth/roles", 503, "Service Unavailable")


def test_opens_after_the_threshold_of_failures_in_a_row() -> None:
    breaker = CircuitBreaker(threshold=3)
    for _ in range(2):
        breaker.failed(DOWN)
    breaker.check()
    breaker.failed(RequestFailed("GET", "/x", "ConnectError", sent=False))
    with pytest.raises(CircuitOpen, match="3 API calls in a row failed; last: GET /x"):
        breaker.check()


def test_a_success_starts_the_count_again() -> None:
    breaker = CircuitBreaker(threshold=3)
    for _ in range(10):
        breaker.failed(DOWN)
        breaker.failed(DOWN)
        breaker.succeeded()
    assert not breaker.is_open


def test_rate_limiting_means_the_api_is_alive() -> None:
    breaker = CircuitBreaker(threshold=2)
    for _ in range(50):
        breaker.failed(RateLimited("GET", "/x", 429, "Too Many Requests", 1.0))
    assert not breaker.is_open


def test_once_open_it_stays_open_for_the_run() -> None:
    breaker = CircuitBreaker(threshold=1)
    breaker.failed(DOWN)
    breaker.succeeded()
    assert breaker.is_open
