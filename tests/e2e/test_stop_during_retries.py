"""A first SIGTERM while calls are being retried: no further retry, no backoff slept out.

Before, a run whose listing kept answering 503 went on retrying for 43-191 s after SIGTERM.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from provisioner.simulator import FaultConfig
from tests.support.served import Served
from tests.support.watch import watched

pytestmark = pytest.mark.e2e

MANIFEST = """version: 1
services:
  - name: orders
    credentials:
      - name: cdc
        roles: [read_only]
        sinks: [files]
sinks:
  files: {type: file, path: secrets}
"""


def test_sigterm_stops_retrying_a_failing_listing(sim: Served, tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text(MANIFEST)
    sim.state.faults = FaultConfig(fail_all=True)  # logins answer; every other call is a 503
    # Many attempts: left alone, the retries (up to 30 s apart) would go on for minutes.
    env = sim.env(PROVISIONER_MAX_ATTEMPTS="12")
    with watched("apply", "m.yaml", cwd=tmp_path, env=env) as run:
        run.wait_event("retry.scheduled")
        code = run.stop(signal.SIGTERM, timeout=20)  # raises if the run outlives the wait
    events = run.events()
    stopping = next(i for i, e in enumerate(events) if e.get("event") == "apply.stopping")
    retried_after = [e for e in events[stopping + 1 :] if e.get("event") == "retry.scheduled"]
    assert code != 0, run.text
    assert len(retried_after) <= 1, run.text  # at most the one being scheduled as it came
    assert "not retried: stopped by SIGTERM" in run.text
