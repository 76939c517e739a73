"""Sending one request through the client's connection pool, as the API client does."""

from __future__ import annotations

from typing import Any

import httpx

from provisioner.streamkap.pool import Pool


async def send(pool: Pool, method: str, path: str, *, json: Any = None) -> httpx.Response:
    """One request on a held connection; the whole answer is read before it is released."""
    async with pool.connection() as client:
        return await client.request(method, path, json=json)
