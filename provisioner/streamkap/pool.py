"""HTTP connections for one run: one httpx client behind a concurrency limiter.

The limiter admits no more requests than there are connections, so a request that holds a slot
never queues inside the HTTP stack: whatever it does once admitted (pacing, taking a token) is
done right before it is sent. It sends through the transport it is given: `Requests` gives it
an `AiohttpTransport` (see its module for why), tests and `--simulate` another.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import anyio
import httpx


class Pool:
    """At most `concurrency` requests in flight, each on a connection of its own."""

    def __init__(
        self,
        base_url: str,
        *,
        concurrency: int,
        timeout: float,
        headers: Mapping[str, str],
        transport: httpx.AsyncBaseTransport,
    ) -> None:
        self._client = httpx.AsyncClient(
            base_url=base_url, timeout=timeout, transport=transport, headers=dict(headers)
        )
        self._limiter = anyio.CapacityLimiter(concurrency)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[httpx.AsyncClient]:
        """Hold a free connection for one request: yields the client to send it with."""
        async with self._limiter:
            yield self._client
        # Answers come in bursts: yield, so the requests this one's release let go are sent
        # before the burst's answers are processed, not after (that would idle the connection).
        await anyio.lowlevel.cancel_shielded_checkpoint()

    async def aclose(self) -> None:
        await self._client.aclose()
