"""The bench's project-keys run (issue 20), small: what it counts is what the API was sent, and
its converged re-run reads every key in detail and writes nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

from bench.project_keys import route
from tests.support.served import REPO, Served

KEYS = 12


def test_the_project_keys_run_counts_what_the_api_was_sent(sim: Served, tmp_path: Path) -> None:
    sim.state.project_keys.activation_delay = 0  # as the bench's --slow-activation 0
    command = [sys.executable, "-m", "bench.project_keys", sim.url, str(KEYS), "4", str(tmp_path)]
    done = subprocess.run(
        command, env=sim.env(), cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.splitlines()[-1])

    assert result["written"] == KEYS
    assert len(sim.state.project_keys.live()) == KEYS
    first, converged = result["first"]["requests"], result["converged"]["requests"]
    assert first["POST /project-keys"] == KEYS
    assert first["GET /project-keys/{id}"] == KEYS  # each create read back once: active at once
    assert converged["GET /project-keys/{id}"] == KEYS  # the detail reads of the re-run
    assert converged["GET /project-keys"] == 1
    assert not [
        call
        for call in converged
        if call.split()[0] in {"POST", "PATCH", "DELETE"} and call != "POST /auth/access-token"
    ]
    # What the run counted is what the simulator logged, request for request.
    logged = Counter(f"{call.method} {route(call.path)}" for call in sim.state.calls())
    assert logged == Counter(first) + Counter(converged)
