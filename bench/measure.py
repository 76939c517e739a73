"""Running measured processes: one side against a fresh simulator, or a scale run, or start-up."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.simserver import Faults, clean_env, simulator

TIMEOUT = 600.0
SIDES = ("provisioner", "naive")


@dataclass(frozen=True)
class Run:
    """One side's run: wall and CPU seconds (start-up excluded), the HTTP statuses it saw and
    (where counted) the requests it sent."""

    wall: float
    cpu: float
    statuses: dict[int, int]
    requests: dict[str, int] = field(default_factory=dict)  # by method and route, where counted

    @property
    def refused(self) -> int:
        return self.statuses.get(429, 0)

    @property
    def calls(self) -> int:
        return sum(self.statuses.values())


def side_by_side(faults: Faults, count: int, concurrency: int, runs: int) -> dict[str, list[Run]]:
    """`runs` runs of each side, back to back, alternating which goes first."""
    results: dict[str, list[Run]] = {side: [] for side in SIDES}
    for index in range(runs):
        order = SIDES if index % 2 == 0 else SIDES[::-1]
        for side in order:
            results[side].append(measure(side, faults, count, concurrency))
    return results


def measure(side: str, faults: Faults, count: int, concurrency: int) -> Run:
    """Run `bench.run` for one side against a simulator of its own."""
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp, simulator(faults) as url:
        args = [side, url, str(count), str(concurrency), tmp]
        data = _run_json(["-m", "bench.run", *args], Path(tmp) / "stderr.log")
    if data["written"] != count:
        raise RuntimeError(f"{side} wrote {data['written']} of {count} secrets")
    statuses = {int(status): n for status, n in data["statuses"].items()}
    return Run(float(data["wall"]), float(data["cpu"]), statuses)


def project_keys(faults: Faults, count: int, concurrency: int) -> dict[str, Run]:
    """`bench.project_keys` against a simulator of its own: the first apply and the converged
    re-run, each a `Run` with its requests counted by method and route."""
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp, simulator(faults) as url:
        args = [url, str(count), str(concurrency), tmp]
        data = _run_json(["-m", "bench.project_keys", *args], Path(tmp) / "stderr.log")
    if data["written"] != count:
        raise RuntimeError(f"the provisioner wrote {data['written']} of {count} project keys")
    return {run: _run_of(data[run]) for run in ("first", "converged")}


def _run_of(data: dict[str, Any]) -> Run:
    statuses = {int(status): n for status, n in data["statuses"].items()}
    return Run(float(data["wall"]), float(data["cpu"]), statuses, dict(data["requests"]))


def scale(count: int) -> dict[str, float]:
    """`bench.scale` in a fresh process: wall and CPU seconds, peak RSS in bytes."""
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        data = _run_json(["-m", "bench.scale", str(count)], Path(tmp) / "stderr.log")
    return {key: float(value) for key, value in data.items()}


def startup(code: str) -> float:
    """Wall seconds of a fresh interpreter that runs `code` (imports) and exits."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], env=clean_env(), check=True, timeout=TIMEOUT)
    return time.perf_counter() - started


def _run_json(args: list[str], log: Path) -> Any:
    # stderr (the provisioner's log lines) goes to a file: a pipe would cost this process CPU.
    with log.open("wb") as err:
        done = subprocess.run(
            [sys.executable, *args],
            stdout=subprocess.PIPE,
            stderr=err,
            env=clean_env(),
            timeout=TIMEOUT,
            check=False,
        )
    if done.returncode != 0:
        tail = log.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{' '.join(args)} exited {done.returncode}:\n{tail}")
    return json.loads(done.stdout.decode().strip().splitlines()[-1])
