"""A `--sink` that serves no credential: said, not refused."""

from __future__ import annotations

import structlog

from provisioner.manifest.format import DEFAULT_SINK
from provisioner.manifest.load import Manifests

log = structlog.get_logger("provisioner.manifest")


def warn_if_sink_unused(manifests: Manifests, shown: str | None) -> None:
    """Warn when `--sink` (shown as `shown`, its password scrubbed) is used by no credential.

    Not an error: the run does what the manifests say, and a `run` whose last credential left
    the default sink must not stop over it.
    """
    if shown is None or any(DEFAULT_SINK in c.sinks for c in manifests.credentials):
        return
    log.warning(
        "sink.unused",
        sink=shown,
        detail="--sink is used by no credential: each names its own sinks (`sinks:` or "
        "`defaults.sinks`), so nothing is written there",
    )
