"""The yardstick: a plain asyncio + httpx script doing the same creates and file writes.

What a competent engineer writes in an afternoon: one client, a semaphore, a 429 pauses only the
request that got it (for its `Retry-After`), and each secret is written atomically and durably
(temp file, fsync, rename) from a worker thread. No manifest, no planning, no listing.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from bench.workload import ROLE_ID, SINK_DIR


def warm_up() -> None:
    """Load now what the first client loads: start-up, measured apart from the work."""
    import httpcore  # noqa: F401  # httpx imports its transport lazily


LOGIN = {"client_id": "sim-admin", "secret": "sim-admin-secret"}


async def provision(
    url: str, credentials: list[tuple[str, str]], concurrency: int, workdir: Path
) -> Counter[int]:
    """Create every credential and write its secret file; return the count of each status."""
    statuses: Counter[int] = Counter()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        login = await client.post("/auth/access-token", json=LOGIN)
        login.raise_for_status()
        headers = {"Authorization": f"Bearer {login.json()['accessToken']}"}
        semaphore = asyncio.Semaphore(concurrency)

        async def one(service: str, name: str) -> None:
            body = {"description": f"[provisioner:{service}/{name}]", "role_ids": [ROLE_ID]}
            while True:
                async with semaphore:
                    response = await client.post(
                        "/auth/client-credentials", json=body, headers=headers
                    )
                statuses[response.status_code] += 1
                if response.status_code != 429:
                    break
                await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
            response.raise_for_status()
            document = _document(service, name, response.json())
            await asyncio.to_thread(_write, workdir / SINK_DIR / service, name, document)

        await asyncio.gather(*(one(service, name) for service, name in credentials))
    return statuses


def _document(service: str, name: str, created: dict[str, Any]) -> bytes:
    document = {
        "client_id": created["client_id"],
        "secret": created["secret"],
        "service": service,
        "credential": name,
        "description": None,
        "role_ids": [ROLE_ID],
        "permission_ids": [],
        "service_id": None,
        "created_at": created["created_at"],
    }
    return (json.dumps(document, indent=2) + "\n").encode()


def _write(directory: Path, name: str, data: bytes) -> None:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    temp = directory / f".{name}.json.tmp"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temp, directory / f"{name}.json")
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
