"""The provisioner's own code path, in-process: manifest -> plan -> engine -> file sink."""

from __future__ import annotations

import gc
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
from pydantic import SecretStr

from provisioner.config import Settings
from provisioner.logs import configure_logging
from provisioner.reconcile import pipeline
from provisioner.reconcile.session import Job, open_session
from provisioner.runtime import Unobserved
from provisioner.simulator import ADMIN_CLIENT_ID, ADMIN_SECRET
from provisioner.sinks import sink_types


def warm_up() -> None:
    """Load now what a run loads on first use: start-up, measured apart from the work."""
    sink_types()  # the sink plugins, found through entry points
    anyio.run(anyio.lowlevel.checkpoint)  # anyio's event-loop backend
    gc.freeze()  # as the CLI does once it has started


class Statuses(Unobserved):
    """Counts each HTTP status the run's calls got."""

    def __init__(self) -> None:
        self.statuses: Counter[int] = Counter()

    def on_status(self, status: int) -> None:
        self.statuses[status] += 1


async def provision(url: str, manifest: Path, concurrency: int, workdir: Path) -> Counter[int]:
    """Apply the manifest as `provisioner apply` does; return the count of each HTTP status."""
    values: dict[str, Any] = {
        "host": url,
        "client_id": ADMIN_CLIENT_ID,
        "secret": SecretStr(ADMIN_SECRET),
        "concurrency": concurrency,
        "log_format": "json",
    }
    settings = Settings(**values)  # as the CLI builds it: the environment is read too
    configure_logging(settings.log_level, settings.log_format)
    job = Job(paths=(manifest,), settings=settings, cwd=workdir)
    manifests = pipeline.load(job)
    counted = Statuses()
    async with open_session(job, manifests) as session:
        result = await pipeline.apply(session, prune=False, observer=counted)
    statuses = counted.statuses
    if result.failed:
        raise RuntimeError("some actions failed")
    return statuses
