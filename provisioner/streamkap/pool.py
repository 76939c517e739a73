"""HTTP connections for one run: one httpx client behind a concurrency limiter.

The limiter admits no more requests than there are connections, so a request that holds a slot
never queues inside the HTTP stack: whatever it does once admitted (pacing, taking a token) is
done right before it is sent. It sends through the transport it is given: `Requests` gives it
an `AiohttpTransport` (see its module for why), tests and `--simulate` another.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx

_URLS_KEPT = 64  # the paths whose URL is kept: the few every run calls again and again


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
        self._sender = Sender(self._client, transport)
        self._limiter = anyio.CapacityLimiter(concurrency)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Sender]:
        """Hold a free connection for one request: yields what to send it with."""
        async with self._limiter:
            yield self._sender
        # Answers come in bursts: yield, so the requests this one's release let go are sent
        # before the burst's answers are processed, not after (that would idle the connection).
        await anyio.lowlevel.cancel_shielded_checkpoint()

    async def aclose(self) -> None:
        await self._client.aclose()


class Sender:
    """Sends one request as `client.request` would, straight through its transport.

    The request is the one the client would build (its base URL, headers and timeout) and the
    whole answer is read, but the client's machinery for what this API never uses (a cookie
    jar read on every answer, redirects, auth flows, event hooks) is skipped: it cost more than
    the transport itself, ~100 µs a request (docs/performance.md). Cookies are not kept.
    """

    def __init__(self, client: httpx.AsyncClient, transport: httpx.AsyncBaseTransport) -> None:
        self._client = client
        self._transport = transport
        self._timeout = client.timeout.as_dict()
        self._urls: dict[str, httpx.URL] = {}

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        extensions: dict[str, Any] | None = None,
    ) -> httpx.Response:
        merged = self._client.headers.copy()
        merged.update(headers)
        request = httpx.Request(
            method,
            self._url(path),
            json=json,
            headers=merged,
            extensions={"timeout": self._timeout, **(extensions or {})},
        )
        try:
            response = await self._transport.handle_async_request(request)
        except httpx.RequestError as exc:
            exc.request = request  # as the client does: an error names the request it ended
            raise
        response.request = request
        try:
            await response.aread()
        finally:
            await response.aclose()
        return response

    def _url(self, path: str) -> httpx.URL:
        """The client's URL for `path`, kept for the paths called most."""
        url = self._urls.get(path)
        if url is None:
            url = self._client.build_request("GET", path).url
            if len(self._urls) >= _URLS_KEPT:  # one-off paths (a delete's) must not pile up
                self._urls.clear()
            self._urls[path] = url
        return url
