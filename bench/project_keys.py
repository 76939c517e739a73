"""Project keys converged in a fresh process: `python -m bench.project_keys URL COUNT CONCURRENCY
WORKDIR`.

Applies a manifest of COUNT project keys twice against the simulator at URL, as `provisioner
apply` does: the first run creates every key (each create read back until `active`), the second
finds them converged (the listing, one detail read per key, no write). Everything is imported and
warmed up before the first clock starts. Prints one JSON object: for each run its wall and CPU
seconds and the requests it sent, counted by method and route; and the files written.
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import httpx

from bench import provision, workload
from bench.run import cpu_seconds
from provisioner.http.transport import AiohttpTransport
from provisioner.streamkap.requests import TOKEN_PATHS as TOKEN

RUNS = ("first", "converged")
#: The writes a converged run must not send.
WRITES = frozenset({"POST", "PATCH", "PUT", "DELETE"})
_ID = re.compile(r"^(/project-keys|/auth/client-credentials)/[^/]+$")

requests: Counter[str] = Counter()

_Handle = Callable[[AiohttpTransport, httpx.Request], Coroutine[Any, Any, httpx.Response]]


def count_requests(handle: _Handle) -> _Handle:
    """`handle` counting each request it sends by method and route (an id shown as `{id}`)."""

    @functools.wraps(handle)
    async def counted(self: AiohttpTransport, request: httpx.Request) -> httpx.Response:
        requests[f"{request.method} {route(request.url.path)}"] += 1
        return await handle(self, request)

    return counted


def route(path: str) -> str:
    """`path` with a credential's or key's id shown as `{id}`."""
    return _ID.sub(r"\1/{id}", path)


def main(argv: list[str]) -> None:
    url, count, concurrency, workdir = argv[0], int(argv[1]), int(argv[2]), argv[3]
    root = Path(workdir)
    folder = root / "manifests"
    folder.mkdir()
    manifest = folder / "keys.yaml"
    manifest.write_text(workload.project_key_manifest_text(count), encoding="utf-8")
    # Every request the run sends, token calls included, goes through this transport.
    AiohttpTransport.handle_async_request = count_requests(  # type: ignore[method-assign,assignment]
        AiohttpTransport.handle_async_request
    )
    provision.warm_up()
    results: dict[str, Any] = {}
    for run in RUNS:
        requests.clear()
        started, cpu = time.perf_counter(), cpu_seconds()
        statuses = asyncio.run(provision.provision(url, folder, concurrency, root))
        wall, cpu = time.perf_counter() - started, cpu_seconds() - cpu
        results[run] = {"wall": wall, "cpu": cpu, "requests": dict(requests), "statuses": statuses}
    converged = results["converged"]["requests"]
    writes = [call for call in converged if call.split()[0] in WRITES and TOKEN not in call]
    if writes:
        raise RuntimeError(f"the converged run wrote: {', '.join(sorted(writes))}")
    written = sum(1 for _ in (root / workload.SINK_DIR).glob("*/*.json"))
    print(json.dumps({**results, "written": written}))


if __name__ == "__main__":
    main(sys.argv[1:])
