"""The connection pool: small httpx clients behind one limiter, over a real socket."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from provisioner.pool import Pool, split
from provisioner.simulator import serve_in_thread


class HoldUntilFull:
    """An ASGI app that holds every request until `expected` are in flight at once."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.in_flight = 0
        self.peak = 0
        self.clients: set[Any] = set()
        self._full: anyio.Event | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        self._full = self._full or anyio.Event()
        self.clients.add(scope["client"])
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        if self.in_flight >= self.expected:
            self._full.set()
        await self._full.wait()
        self.in_flight -= 1
        headers = [(b"content-type", b"application/json"), (b"content-length", b"2")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"{}"})


@pytest.mark.parametrize(
    ("total", "size", "shards"), [(40, 8, [8, 8, 8, 8, 8]), (10, 4, [4, 3, 3]), (1, 8, [1])]
)
def test_connections_are_split_into_near_equal_shards(
    total: int, size: int, shards: list[int]
) -> None:
    assert split(total, size) == shards


@pytest.mark.anyio
async def test_every_connection_is_used_and_no_more_are_opened() -> None:
    """30 requests, 10 at most in flight: all 10 are (so none queued in a shard), on 10 sockets."""
    app = HoldUntilFull(expected=10)
    with serve_in_thread(app) as url:
        pool = Pool(url, concurrency=10, timeout=10, headers={}, shard_size=4)
        try:
            with anyio.fail_after(20):
                async with anyio.create_task_group() as group:
                    for _ in range(30):
                        group.start_soon(pool.request, "GET", "/")
        finally:
            await pool.aclose()
    assert pool.shards == 3
    assert app.peak == 10
    assert len(app.clients) == 10
