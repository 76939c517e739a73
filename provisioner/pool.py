"""HTTP connections for one run: several small httpx clients behind one concurrency limiter.

httpcore scans its whole pool on every request and release (quadratically when connections are
idle), so one client with 40 connections spends milliseconds of CPU per call; clients of a few
connections each cost a fraction of that. The limiter admits no more requests than there are
connections, and each request goes to the client with the most free connections, so no request
ever queues inside httpcore.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx

#: Connections per client: past ~8, httpcore's bookkeeping costs more than the extra client.
SHARD_SIZE = 8
#: Absolute URLs kept ready (the fixed endpoints; per-credential paths are built each time).
URL_CACHE = 32


class _Shard:
    __slots__ = ("busy", "client", "size")

    def __init__(self, client: httpx.AsyncClient, size: int) -> None:
        self.client = client
        self.size = size
        self.busy = 0

    @property
    def free(self) -> int:
        return self.size - self.busy


class Pool:
    """At most `concurrency` requests in flight, spread over clients of `shard_size` connections."""

    def __init__(
        self,
        base_url: str,
        *,
        concurrency: int,
        timeout: float,
        headers: Mapping[str, str],
        transport: httpx.AsyncBaseTransport | None = None,
        shard_size: int | None = None,
    ) -> None:
        # An injected transport (tests, --simulate) holds no connections: one client suffices.
        size = shard_size or SHARD_SIZE
        sizes = [concurrency] if transport is not None else split(concurrency, size)
        # One TLS context for all: each client would otherwise load the CA bundle (~30 ms).
        verify = httpx.create_ssl_context() if transport is None else True
        self._shards = [
            _Shard(_client(base_url, size, timeout, headers, transport, verify), size)
            for size in sizes
        ]
        self._limiter = anyio.CapacityLimiter(concurrency)
        self._base = base_url.rstrip("/")
        self._urls: dict[str, httpx.URL] = {}

    def url(self, path: str) -> httpx.URL:
        """The absolute URL of `path`: httpx merging a path into the base URL costs ~35 us."""
        url = self._urls.get(path)
        if url is None:
            url = httpx.URL(self._base + path)
            if len(self._urls) < URL_CACHE:
                self._urls[path] = url
        return url

    @property
    def shards(self) -> int:
        return len(self._shards)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[httpx.AsyncClient]:
        """Hold a free connection for one request: yields the client that has it."""
        async with self._limiter:
            shard = max(self._shards, key=lambda s: s.free)
            shard.busy += 1
            try:
                yield shard.client
            finally:
                shard.busy -= 1

    async def request(
        self, method: str, path: str, *, json: Any = None, headers: Mapping[str, str] | None = None
    ) -> httpx.Response:
        """Send one request and read its whole answer, holding a connection only meanwhile."""
        async with self.connection() as client:
            return await client.request(method, self.url(path), json=json, headers=headers)

    async def aclose(self) -> None:
        for shard in self._shards:
            await shard.client.aclose()


def split(total: int, size: int) -> list[int]:
    """`total` connections as near-equal shards of at most `size` each."""
    count = max(1, -(-total // size))
    base, extra = divmod(total, count)
    return [base + 1 if i < extra else base for i in range(count)]


def _client(
    base_url: str,
    size: int,
    timeout: float,
    headers: Mapping[str, str],
    transport: httpx.AsyncBaseTransport | None,
    verify: Any,
) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=timeout,
        transport=transport,
        verify=verify,
        limits=httpx.Limits(max_connections=size, max_keepalive_connections=size),
        headers=dict(headers),
    )
