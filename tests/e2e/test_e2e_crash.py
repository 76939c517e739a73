"""Crash safety and chaos: whatever happens mid-run, the next run converges with no leftovers."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from provisioner.model import owner_key
from provisioner.simulator import FaultConfig, SimulatorState
from tests.support.served import Served, run_cli, served


def manifest(count: int) -> str:
    lines = [
        "version: 1",
        "defaults:",
        "  roles: [read_only]",
        "  sinks: [files, dotenv]",
        "sinks:",
        "  files: {type: file, path: ./secrets}",
        "  dotenv: {type: env, path: ./app.env}",
        "services:",
        "  - name: svc",
        "    credentials:",
    ]
    lines += [f"      - name: c{i:03d}" for i in range(count)]
    return "\n".join(lines) + "\n"


def write_manifest(workdir: Path, count: int) -> None:
    (workdir / "manifests").mkdir(exist_ok=True)
    (workdir / "manifests" / "m.yaml").write_text(manifest(count))


def assert_converged(sim: Served, workdir: Path, count: int) -> None:
    """Exactly one live credential per key, its secret in every sink, nothing else live."""
    live = sim.state.live()
    keys = sorted(owner_key(r.description) or "" for r in live)
    assert keys == [f"svc/c{i:03d}" for i in range(count)]
    env_text = (workdir / "app.env").read_text()
    for record in live:
        name = (owner_key(record.description) or "").split("/")[1]
        stored = json.loads((workdir / "secrets" / "svc" / f"{name}.json").read_text())
        assert (stored["client_id"], stored["secret"]) == (record.client_id, record.secret)
        assert f"'{record.client_id}'" in env_text
        assert f"'{record.secret}'" in env_text


def popen_apply(sim: Served, workdir: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "provisioner", "apply", "manifests"],
        cwd=workdir,
        env=sim.env(PROVISIONER_CONCURRENCY="8"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_for_creates(sim: Served, at_least: int, timeout: float = 20) -> None:
    """Block until the server has seen `at_least` creates (observable state, not a sleep)."""
    deadline = time.monotonic() + timeout
    while len(sim.state.calls("POST", "/auth/client-credentials")) < at_least:
        assert time.monotonic() < deadline, "the run never got going"
        time.sleep(0.005)


def signalled_apply(sim: Served, workdir: Path, *signals: signal.Signals) -> tuple[int, str]:
    """Start apply, send `signals` once it is creating, and return its exit code and stderr."""
    with subprocess.Popen(
        [sys.executable, "-m", "provisioner", "apply", "manifests"],
        cwd=workdir,
        env=sim.env(PROVISIONER_CONCURRENCY="4"),
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        wait_for_creates(sim, 4)
        for signum in signals:
            process.send_signal(signum)
        _, stderr = process.communicate(timeout=30)
    return process.returncode, stderr


@pytest.mark.parametrize("seed", range(4))
def test_a_run_killed_at_any_instant_is_repaired_by_the_next(tmp_path: Path, seed: int) -> None:
    count = 30
    write_manifest(tmp_path, count)
    rng = random.Random(seed)
    with served(SimulatorState(faults=FaultConfig(latency=0.02))) as sim:
        for _ in range(2):  # two crashes in a row, at different points
            process = popen_apply(sim, tmp_path)
            wait_for_creates(sim, rng.randint(1, count))
            process.send_signal(signal.SIGKILL)
            process.wait()
        result = run_cli("apply", "manifests", cwd=tmp_path, env=sim.env())
        assert result.returncode == 0, result.stderr
        assert_converged(sim, tmp_path, count)
        sim.state.reset_calls()
        again = run_cli("apply", "manifests", cwd=tmp_path, env=sim.env())
        assert again.returncode == 0
        assert sim.state.write_calls() == []


def test_sigterm_starts_no_new_work_and_exits_1(tmp_path: Path) -> None:
    count = 40
    write_manifest(tmp_path, count)
    with served(SimulatorState(faults=FaultConfig(latency=0.05))) as sim:
        returncode, stderr = signalled_apply(sim, tmp_path, signal.SIGTERM)
        assert returncode == 1
        assert "stopping" in stderr
        assert "Applied:" in stderr
        live = len(sim.state.live())
        assert live < count  # it stopped early
        assert f"not started: {count - live} actions" in stderr
        assert f"0 failed. {count - live} not started." in stderr
        result = run_cli("apply", "manifests", cwd=tmp_path, env=sim.env())
        assert result.returncode == 0, result.stderr
        assert_converged(sim, tmp_path, count)


def test_chaos_converges_within_two_runs(tmp_path: Path) -> None:
    count = 200
    write_manifest(tmp_path, count)
    faults = FaultConfig(
        error_rate=0.15,
        drop_after_create_rate=0.05,
        error_after_create_rate=0.05,
        token_ttl=1,
        # 200 creates, 16 at a time, take over a second: longer than the token lives.
        latency=0.1,
        seed=11,
    )
    with served(SimulatorState(faults=faults)) as sim:
        env = sim.env(PROVISIONER_CONCURRENCY="16", PROVISIONER_MAX_ATTEMPTS="8")
        first = run_cli("apply", "manifests", cwd=tmp_path, env=env, timeout=120)
        if first.returncode != 0:
            second = run_cli("apply", "manifests", cwd=tmp_path, env=env, timeout=120)
            assert second.returncode == 0, second.stderr[-2000:]
        assert_converged(sim, tmp_path, count)
        statuses = {call.status for call in sim.state.calls()}
        assert {503, 500, 0} <= statuses  # every fault really happened (0: dropped)
        assert sim.state.calls("POST", "/auth/access-token/refresh")  # the 1 s token was renewed


def test_overlapping_runs_take_turns_and_make_no_duplicates(tmp_path: Path) -> None:
    count = 30
    write_manifest(tmp_path, count)
    with served(SimulatorState(faults=FaultConfig(latency=0.02))) as sim:
        runs = [popen_apply(sim, tmp_path) for _ in range(3)]
        assert [run.wait(timeout=60) for run in runs] == [0, 0, 0]
        assert_converged(sim, tmp_path, count)
        creates = sim.state.calls("POST", "/auth/client-credentials")
        assert len(creates) == count  # the later runs found everything done
    assert (tmp_path / "secrets" / ".provisioner.lock").stat().st_mode & 0o777 == 0o600


def test_a_second_signal_aborts_without_a_traceback(tmp_path: Path) -> None:
    count = 40
    write_manifest(tmp_path, count)
    with served(SimulatorState(faults=FaultConfig(latency=0.05))) as sim:
        returncode, stderr = signalled_apply(sim, tmp_path, signal.SIGTERM, signal.SIGINT)
        assert returncode == 1
        assert "aborted" in stderr
        assert "Traceback" not in stderr
        result = run_cli("apply", "manifests", cwd=tmp_path, env=sim.env())
        assert result.returncode == 0, result.stderr
        assert_converged(sim, tmp_path, count)
