"""HTTP connections for one run: one httpx client behind a concurrency limiter.

The limiter admits no more requests than there are connections, so a request that holds a slot
never queues inside the HTTP stack: whatever it does once admitted (pacing, taking a token) is
done right before it is sent. The client sends through `AiohttpTransport` (see its module for
why), unless it is given another transport (tests, `--simulate`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx

from provisioner.transport import AiohttpTransport

#: Absolute URLs kept ready (the fixed endpoints; per-credential paths are built each time).
URL_CACHE = 32


class Pool:
    """At most `concurrency` requests in flight, each on a connection of its own."""

    def __init__(
        self,
        base_url: str,
        *,
        concurrency: int,
        timeout: float,
        headers: Mapping[str, str],
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        transport = transport or AiohttpTransport(connections=concurrency)
        self._client = httpx.AsyncClient(
            base_url=base_url, timeout=timeout, transport=transport, headers=dict(headers)
        )
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

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[httpx.AsyncClient]:
        """Hold a free connection for one request: yields the client to send it with."""
        async with self._limiter:
            yield self._client
        # Answers come in bursts: yield, so the requests this one's release let go are sent
        # before the burst's answers are processed, not after (that would idle the connection).
        await anyio.lowlevel.cancel_shielded_checkpoint()

    async def request(
        self, method: str, path: str, *, json: Any = None, headers: Mapping[str, str] | None = None
    ) -> httpx.Response:
        """Send one request and read its whole answer, holding a connection only meanwhile."""
        async with self.connection() as client:
            return await client.request(method, self.url(path), json=json, headers=headers)

    async def aclose(self) -> None:
        await self._client.aclose()
