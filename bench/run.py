"""One measured run in a fresh process: `python -m bench.run SIDE URL COUNT CONCURRENCY WORKDIR`.

Everything is imported and warmed up before the clock starts, so start-up is left out (the
start-up row measures it); prints one JSON object: wall and CPU seconds, the HTTP statuses seen,
the files written.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from collections import Counter
from pathlib import Path

from bench import naive, provision, workload


def main(argv: list[str]) -> None:
    side, url, count, concurrency, workdir = argv[0], argv[1], int(argv[2]), int(argv[3]), argv[4]
    root = Path(workdir)
    manifest = workload.write_manifests(root, count)
    (naive if side == "naive" else provision).warm_up()
    started, cpu = time.perf_counter(), cpu_seconds()
    statuses = asyncio.run(_provision(side, url, count, concurrency, root, manifest))
    wall, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    written = sum(1 for _ in (root / workload.SINK_DIR).glob("*/*.json"))
    print(json.dumps({"wall": wall, "cpu": cpu, "statuses": statuses, "written": written}))


async def _provision(
    side: str, url: str, count: int, concurrency: int, root: Path, manifest: Path
) -> Counter[int]:
    if side == "naive":
        return await naive.provision(url, workload.names(count), concurrency, root)
    return await provision.provision(url, manifest, concurrency, root)


def cpu_seconds() -> float:
    """User plus system CPU of this process so far, every thread included."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    main(sys.argv[1:])
