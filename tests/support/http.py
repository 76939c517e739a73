"""Pools as the API client builds them, and one request sent through one, as the client does."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from provisioner.http.transport import AiohttpTransport
from provisioner.streamkap.pool import Pool


def aiohttp_pool(
    url: str, *, concurrency: int, timeout: float = 10, headers: Mapping[str, str] | None = None
) -> Pool:
    """A pool over the aiohttp transport, as `Requests` builds it."""
    transport = AiohttpTransport(connections=concurrency)
    return Pool(
        url, concurrency=concurrency, timeout=timeout, headers=headers or {}, transport=transport
    )


async def send(pool: Pool, method: str, path: str, *, json: Any = None) -> httpx.Response:
    """One request on a held connection; the whole answer is read before it is released."""
    async with pool.connection() as client:
        return await client.request(method, path, json=json)
