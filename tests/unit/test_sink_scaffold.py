"""What every sink shares: the status rule of a store's errors, per-key locks, reads retried."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from provisioner.errors import SinkError
from provisioner.sinks._scaffold import KeyedLocks, Retrier, response_json
from provisioner.sinks.base import SinkContext
from provisioner.sinks.vault import VaultSink, VaultSinkOptions
from tests.support.aws_support import free_port
from tests.support.hostile import drip, hostile_server, json_answer

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("status", "throttled", "retryable"),
    [(429, False, True), (500, False, True), (503, False, True), (400, False, False),
     (403, False, False), (400, True, True)],
)  # fmt: skip
def test_a_store_error_is_retryable_when_busy_or_failing(
    status: int, throttled: bool, retryable: bool
) -> None:
    error = SinkError.from_response("s", "cannot read", status, throttled=throttled)
    assert error.retryable is retryable
    assert str(error) == "sink 's': cannot read"


def test_a_store_error_carries_the_retry_after_hint() -> None:
    headers = httpx.Headers({"retry-after": "4"})
    assert SinkError.from_response("s", "busy", 429, headers).retry_after == 4.0
    assert SinkError.from_response("s", "busy", 429, httpx.Headers()).retry_after is None
    assert SinkError.from_response("s", "busy", 429).retry_after is None


def test_keyed_locks_share_one_lock_per_key() -> None:
    locks = KeyedLocks()
    assert locks("a/b") is locks("a/b")
    assert locks("a/b") is not locks("a/c")


@pytest.mark.parametrize(
    ("content", "expected"),
    [(b"", {}), (b"not json", {}), (b"[1]", {}), (b'{"errors": ["x"]}', {"errors": ["x"]})],
)
def test_response_json_is_an_object_or_empty(content: bytes, expected: object) -> None:
    assert response_json(httpx.Response(500, content=content)) == expected


async def test_reads_are_retried_while_the_store_is_busy() -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    answers = iter([SinkError("s", "busy", retryable=True, retry_after=1.0), None])

    async def call() -> str:
        error = next(answers)
        if error is not None:
            raise error
        return "read"

    assert await Retrier("vault", "s", 3, sleep)("read", call) == "read"
    assert waits == [1.0]


async def test_a_lasting_refusal_is_not_retried() -> None:
    calls = 0

    async def call() -> None:
        nonlocal calls
        calls += 1
        raise SinkError("s", "denied")

    async def sleep(seconds: float) -> None:
        raise AssertionError("no wait expected")

    with pytest.raises(SinkError, match="denied"):
        await Retrier("vault", "s", 3, sleep)("read", call)
    assert calls == 1


def vault_sink(url: str, slept: list[float], **context: Any) -> VaultSink:
    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    options = VaultSinkOptions(address=url)
    environ = {"VAULT_TOKEN": "s.token-for-the-check"}
    return VaultSink("vault", options, SinkContext(Path(), environ, **context), sleep=sleep)


async def test_a_check_has_one_deadline_for_all_its_attempts() -> None:
    slept: list[float] = []
    with hostile_server(drip(b'{"data": {}}' + b" " * 4000, interval=0.05)) as server:
        sink = vault_sink(server.url, slept, timeout=0.5, max_attempts=6)
        try:
            problem = await sink.check()
        finally:
            await sink.aclose()
    assert problem is not None
    assert "PROVISIONER_TIMEOUT" in str(problem)
    assert len(server.requests) <= 2  # not six attempts of half a second each


async def test_a_check_of_a_store_that_cannot_be_reached_is_not_retried() -> None:
    slept: list[float] = []
    sink = vault_sink(f"http://127.0.0.1:{free_port()}", slept, max_attempts=6)
    try:
        problem = await sink.check()
    finally:
        await sink.aclose()
    assert problem is not None
    assert "ConnectError" in str(problem)
    assert slept == []


async def test_a_check_of_a_busy_store_is_retried() -> None:
    slept: list[float] = []
    busy = json_answer(503, {"errors": ["Vault is sealed"]})
    with hostile_server(lambda request: busy) as server:
        sink = vault_sink(server.url, slept, max_attempts=3)
        try:
            problem = await sink.check()
        finally:
            await sink.aclose()
    assert problem is not None
    assert len(server.requests) == 3
    assert len(slept) == 2
