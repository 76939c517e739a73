"""Validate and plan at scale, in memory: `python -m bench.scale COUNT` prints seconds and peak RSS.

The manifests are files as teams write them (a thousand credentials to a file, ~150 bytes each)
and the remote listing is the JSON text the API would answer with; both are made before the
clock starts. Timed: load and validate, resolve roles, decode and parse the listing, plan.
"""

from __future__ import annotations

import gc
import json
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import workload
from provisioner.manifest import load as manifest_load
from provisioner.manifest import load_manifests, yamlfile
from provisioner.model import Kind, Role, marked_description
from provisioner.reconcile.pipeline import collector_paused
from provisioner.reconcile.plan import plan
from provisioner.reconcile.resolve import resolve_roles
from provisioner.simulator import DEFAULT_ROLES
from provisioner.streamkap.answers import decode_listing, parse_listing

CREATED_AT = "2024-06-01T00:00:00+00:00"
PER_FILE = 1000


def main(argv: list[str]) -> None:
    count = int(argv[0])
    # One file of 100k credentials is past the per-file cap (docs/limits.md): lifted here.
    yamlfile.MAX_FILE_BYTES = manifest_load.MAX_TOTAL_BYTES = 64 * 1024 * 1024
    with tempfile.TemporaryDirectory() as tmp:
        manifests = workload.write_manifests(Path(tmp), count, files=-(-count // PER_FILE))
        listing = [_listing(count)]
        wall, cpu = _validate_and_plan(manifests, listing, _holdings(count), count)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"wall": wall, "cpu": cpu, "peak_rss": peak}))


def _validate_and_plan(
    manifests: Path, listing: list[bytes], holdings: dict[str, dict[str, str | None]], count: int
) -> tuple[float, float]:
    """Wall and CPU seconds of the stages a `plan` run goes through, minus the network.

    `listing` holds the answer's body, dropped once decoded as the client drops its answer.
    """
    gc.freeze()  # as the CLI does once it has started
    started, cpu = time.perf_counter(), time.process_time()
    with collector_paused():  # as pipeline.load
        loaded = load_manifests([manifests])
    # As the client decodes the listing: the collector is never paused across a call.
    remote = parse_listing(decode_listing(listing.pop()))
    roles = [Role(r.id, r.key, r.name) for r in DEFAULT_ROLES]
    with collector_paused():  # as pipeline.make_plan, less its network and file reads
        desired = resolve_roles(loaded, roles)
        result = plan(desired, remote, holdings, now=datetime.now(UTC))
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    if result.counts != {Kind.NOOP: count}:
        raise RuntimeError(f"unexpected plan: {result.counts}")
    return wall, cpu


def _holdings(count: int) -> dict[str, dict[str, str | None]]:
    """Every file sink already holds its credential's client id."""
    names = workload.names(count)
    held: dict[str, dict[str, str | None]] = {}
    for index, (service, credential) in enumerate(names):
        held[f"{service}/{credential}"] = {"local": _client_id(index)}
    return held


def _client_id(index: int) -> str:
    return f"cc_{index:024x}"


def _listing(count: int) -> bytes:
    """What `GET /auth/client-credentials` answers when every credential is up to date.

    Encoded one item at a time, so making it does not raise the peak RSS being measured.
    """
    role = next(r for r in DEFAULT_ROLES if r.id == workload.ROLE_ID)
    role_json = {
        "id": role.id,
        "key": role.key,
        "name": role.name,
        "description": role.description,
        "created_at": CREATED_AT,
        "updated_at": CREATED_AT,
        "permissions": list(role.permissions),
    }
    items = (
        json.dumps(
            {
                "client_id": _client_id(i),
                "description": marked_description(workload.description(s, c), f"{s}/{c}"),
                "created_at": CREATED_AT,
                "roles": [role_json],
                "service_id": None,
                "secret": "****",
                "permission_ids": [],
            }
        )
        for i, (s, c) in enumerate(workload.names(count))
    )
    return ("[" + ",".join(items) + "]").encode()


if __name__ == "__main__":
    main(sys.argv[1:])
