"""End to end: `provisioner run` in a subprocess, real signals, the simulator on a real socket."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from provisioner.simulator import FaultConfig
from tests.support.served import Served, run_cli
from tests.support.watch import watched

ONE_SERVICE = """\
version: 1
defaults: {roles: [read_only], sinks: [files]}
sinks:
  files: {type: file, path: ./secrets}
services:
  - name: %s
    credentials:
      - name: one
      - name: two
"""


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "manifests").mkdir()
    write_atomically(tmp_path / "manifests" / "first.yaml", ONE_SERVICE % "first")
    return tmp_path


def write_atomically(path: Path, text: str) -> None:
    """So a cycle reading the directory meanwhile never sees half a file."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def test_run_picks_up_a_new_manifest_and_stops_cleanly_on_sigterm(
    sim: Served, workdir: Path
) -> None:
    with watched("run", "manifests", "--every", "1s", cwd=workdir, env=sim.env()) as run:
        run.wait_event("cycle.finished", cycle=1, created=2)
        write_atomically(workdir / "manifests" / "second.yaml", ONE_SERVICE % "second")
        found = run.wait_for(
            lambda e: e.get("event") == "cycle.finished" and e["cycle"] > 1 and e["created"] == 2,
            timeout=20,
            what="a cycle creating the new manifest's credentials",
        )
        assert run.stop(signal.SIGTERM) == 0, run.text
    assert (workdir / "secrets" / "second" / "two.json").is_file()
    assert len(sim.state.live()) == 4
    stopped = run.events()[-1]
    assert stopped["event"] == "run.stopped"
    assert stopped["aborted"] is False
    assert stopped["cycles"] >= found["cycle"]


def test_sigterm_lets_the_cycle_in_flight_finish(sim: Served, workdir: Path) -> None:
    sim.state.faults = FaultConfig(latency=0.4)  # every call slow: the cycle is long in flight
    with watched("run", "manifests", "--every", "1h", cwd=workdir, env=sim.env()) as run:
        run.wait_event("plan.ready")  # the creates are about to start
        assert run.stop(signal.SIGTERM) == 0, run.text
    names = [event["event"] for event in run.events()]
    assert names.index("run.stopping") < names.index("cycle.finished")
    assert run.wait_event("cycle.finished", cycle=1)["created"] == 2
    assert "Applied: 2 created, 0 replaced, 0 deleted, 0 unchanged, 0 failed." in run.text
    assert len(sim.state.live()) == 2


def test_sigterm_during_a_cycle_starts_no_new_credential(sim: Served, workdir: Path) -> None:
    """The cycle reads the same halt as `apply`: what was started finishes, the rest waits."""
    many = ONE_SERVICE.replace(
        "      - name: two\n", "".join(f"      - name: c{i}\n" for i in range(8))
    )
    write_atomically(workdir / "manifests" / "first.yaml", many % "first")
    sim.state.faults = FaultConfig(latency=0.3)  # one credential at a time, each slow
    argv = ("run", "manifests", "--every", "1h", "--concurrency", "1")
    with watched(*argv, cwd=workdir, env=sim.env()) as run:
        run.wait_event("credential.created")
        assert run.stop(signal.SIGTERM) == 0, run.text
    finished = run.wait_event("cycle.finished", cycle=1)
    assert finished["skipped"] > 0
    assert finished["created"] + finished["skipped"] == 9
    assert finished["failed"] == 0
    assert len(sim.state.live()) == finished["created"]  # each one created was delivered
    delivered = list((workdir / "secrets" / "first").glob("*.json"))
    assert len(delivered) == finished["created"]


def test_a_second_signal_aborts_the_cycle_in_flight(sim: Served, workdir: Path) -> None:
    sim.state.faults = FaultConfig(latency=30)  # the cycle would outlast the test
    with watched("run", "manifests", "--every", "1h", cwd=workdir, env=sim.env()) as run:
        run.wait_event("cycle.started", cycle=1)
        run.process.send_signal(signal.SIGTERM)
        run.wait_event("run.stopping")
        assert run.stop(signal.SIGINT) == 1
    assert run.wait_event("run.stopped")["aborted"] is True


def test_invalid_manifests_at_start_exit_2_without_any_call(sim: Served, workdir: Path) -> None:
    (workdir / "manifests" / "broken.yaml").write_text("version: 1\nservices:\n  - name: Bad!\n")
    result = run_cli("run", "manifests", "--every", "1s", cwd=workdir, env=sim.env(), timeout=20)
    assert result.returncode == 2
    assert "broken.yaml:3: services[0].name: invalid name" in result.stderr
    assert sim.state.calls() == []


def test_bad_credentials_at_start_exit_2(sim: Served, workdir: Path) -> None:
    env = sim.env(STREAMKAP_SECRET="wrong")
    result = run_cli("run", "manifests", "--every", "1s", cwd=workdir, env=env, timeout=20)
    assert result.returncode == 2, result.stderr
    assert sim.state.write_calls() == []


def test_a_later_invalid_manifest_skips_the_cycle_and_prunes_nothing(
    sim: Served, workdir: Path
) -> None:
    write_atomically(workdir / "manifests" / "second.yaml", ONE_SERVICE % "second")
    args = ("run", "manifests", "--every", "1s", "--prune")
    with watched(*args, cwd=workdir, env=sim.env()) as run:
        run.wait_event("cycle.finished", cycle=1, created=4)
        write_atomically(workdir / "manifests" / "second.yaml", "version: 1\nservicez: []\n")
        skipped = run.wait_event("cycle.skipped")
        assert run.stop(signal.SIGTERM) == 0, run.text
    assert any("second.yaml:2: servicez: unknown field" in p for p in skipped["problems"])
    assert len(sim.state.live()) == 4
    assert [call for call in sim.state.write_calls() if call.method == "DELETE"] == []


def test_a_failing_cycle_is_logged_and_the_loop_goes_on(sim: Served, workdir: Path) -> None:
    sim.state.faults = FaultConfig(fail_all=True)  # the API is down at start
    env = sim.env(PROVISIONER_MAX_ATTEMPTS="1")
    with watched("run", "manifests", "--every", "1s", cwd=workdir, env=env) as run:
        failed = run.wait_event("cycle.failed", cycle=1)
        sim.state.faults = FaultConfig()
        run.wait_for(
            lambda e: e.get("event") == "cycle.finished" and e.get("created") == 2,
            timeout=20,
            what="a cycle that succeeds once the API is back",
        )
        assert run.stop(signal.SIGTERM) == 0, run.text
    assert "HTTP 503" in failed["error"]
