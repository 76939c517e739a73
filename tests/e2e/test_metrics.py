"""Metrics: the textfile parsed back with prometheus-client's parser, and a Pushgateway push."""

from __future__ import annotations

import stat
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from provisioner.cli.metrics import LAST_SUCCESS, Metrics, RunStats, call_label, write_textfile
from provisioner.simulator import FaultConfig
from tests.support.served import Served, human_text, run_cli

MANIFEST = """\
version: 1
defaults: {roles: [read_only], sinks: [files]}
sinks:
  files: {type: file, path: ./secrets}
services:
  - name: metered
    credentials:
"""


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "manifests").mkdir()
    lines = [f"      - name: cred-{index}" for index in range(12)]
    (tmp_path / "manifests" / "m.yaml").write_text(MANIFEST + "\n".join(lines) + "\n")
    return tmp_path


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a text exposition, keyed by name and sorted labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(found: dict[Any, float], name: str, **labels: str) -> float:
    return found[(name, tuple(sorted(labels.items())))]


def by_label(found: dict[Any, float], name: str, label: str) -> dict[str, float]:
    """The samples of one metric, keyed by the value of one label."""
    return {dict(labels)[label]: v for (n, labels), v in found.items() if n == name}


def test_metrics_file_describes_the_run(sim: Served, workdir: Path) -> None:
    sim.state.faults = FaultConfig(error_rate=0.3, seed=3)  # some 503s, hence retries
    result = run_cli(
        "apply", "manifests", "--metrics-file", "run.prom",
        cwd=workdir, env=sim.env(PROVISIONER_MAX_ATTEMPTS="10"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    found = samples((workdir / "run.prom").read_text())
    assert value(found, "provisioner_actions_total", action="create", outcome="ok") == 12
    assert value(found, "provisioner_actions_total", action="replace", outcome="failed") == 0
    assert value(found, "provisioner_runs_total", result="ok") == 1
    assert value(found, "provisioner_last_run_credentials", result="created") == 12
    assert value(found, "provisioner_last_run_success") == 1
    assert value(found, "provisioner_last_run_duration_seconds") > 0
    api = by_label(found, "provisioner_api_requests_total", "status")
    assert set(api) == {str(call.status) for call in sim.state.calls()}
    assert api["503"] == sum(1 for call in sim.state.calls() if call.status == 503)
    retried = by_label(found, "provisioner_retries_total", "call")
    assert sum(retried.values()) > 0
    assert set(retried) <= {"create", "GET /auth/roles", "GET /auth/client-credentials"}
    assert value(found, LAST_SUCCESS) == value(found, "provisioner_last_run_timestamp_seconds")


def test_a_failed_run_keeps_the_last_success_of_an_earlier_one(sim: Served, workdir: Path) -> None:
    ok = run_cli("apply", "manifests", "--metrics-file", "run.prom", cwd=workdir, env=sim.env())
    assert ok.returncode == 0, ok.stderr
    first = samples((workdir / "run.prom").read_text())
    sim.state.faults = FaultConfig(fail_all=True)
    env = sim.env(PROVISIONER_MAX_ATTEMPTS="1")
    failed = run_cli("apply", "manifests", "--metrics-file", "run.prom", cwd=workdir, env=env)
    assert failed.returncode == 1
    found = samples((workdir / "run.prom").read_text())
    assert value(found, "provisioner_last_run_success") == 0
    assert value(found, "provisioner_runs_total", result="failed") == 1
    assert value(found, "provisioner_runs_total", result="ok") == 1  # carried over
    assert value(found, LAST_SUCCESS) == value(first, LAST_SUCCESS)
    assert value(found, "provisioner_api_requests_total", status="503") >= 1


def test_invalid_manifests_are_counted_as_such(sim: Served, workdir: Path) -> None:
    (workdir / "manifests" / "bad.yaml").write_text("version: 1\nservicez: []\n")
    result = run_cli("apply", "manifests", "--metrics-file", "run.prom", cwd=workdir, env=sim.env())
    assert result.returncode == 2
    found = samples((workdir / "run.prom").read_text())
    assert value(found, "provisioner_runs_total", result="invalid") == 1
    assert (LAST_SUCCESS, ()) not in found


def test_counters_carry_over_from_the_previous_file(sim: Served, workdir: Path) -> None:
    """Cron runs are separate processes: the textfile's `*_total` counters keep growing."""
    args = ("apply", "manifests", "--metrics-file", "run.prom")
    assert run_cli(*args, cwd=workdir, env=sim.env()).returncode == 0
    first = samples((workdir / "run.prom").read_text())
    sim.state.reset_calls()
    for _ in range(2):
        assert run_cli(*args, cwd=workdir, env=sim.env()).returncode == 0
    found = samples((workdir / "run.prom").read_text())
    assert value(found, "provisioner_runs_total", result="ok") == 3
    assert value(found, "provisioner_actions_total", action="create", outcome="ok") == 12
    later_answers = sum(1 for call in sim.state.calls() if call.status == 200)
    assert value(found, "provisioner_api_requests_total", status="200") == (
        value(first, "provisioner_api_requests_total", status="200") + later_answers
    )
    assert value(found, "provisioner_last_run_credentials", result="unchanged") == 12  # a gauge


def test_carry_over_ignores_a_file_it_cannot_read(tmp_path: Path) -> None:
    path = tmp_path / "run.prom"
    path.write_text("this is not the exposition format {\n")
    recorder = Metrics()
    recorder.carry_over(path)
    recorder.observe(RunStats(finished_at=1.0, duration=0.1))
    assert value(samples(recorder.text().decode()), "provisioner_runs_total", result="failed") == 1


def test_a_metrics_file_that_cannot_be_written_fails_the_run(sim: Served, workdir: Path) -> None:
    (workdir / "run.prom").mkdir()  # a directory where the file should go
    result = run_cli("apply", "manifests", "--metrics-file", "run.prom", cwd=workdir, env=sim.env())
    assert result.returncode == 1
    assert '"event": "metrics.write_failed"' in result.stderr
    assert "12 created" in human_text(result.stderr)  # the work was done first
    assert len(sim.state.live()) == 12


def test_textfile_is_replaced_whole_and_readable_by_node_exporter(tmp_path: Path) -> None:
    path = tmp_path / "provisioner.prom"
    path.write_text("stale\n")
    metrics = Metrics()
    metrics.observe(RunStats(finished_at=1.0, duration=2.0))
    write_textfile(path, metrics)
    assert [p.name for p in tmp_path.iterdir()] == ["provisioner.prom"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert value(samples(path.read_text()), "provisioner_runs_total", result="failed") == 1


def test_registries_are_per_run_not_global() -> None:
    first, second = Metrics(), Metrics()
    first.observe(RunStats(finished_at=1.0, duration=1.0))
    assert b'result="failed"} 1.0' in first.text()
    assert b"provisioner_runs_total{" not in second.text()


@pytest.mark.parametrize(
    ("call", "label"),
    [
        ("DELETE /auth/client-credentials/cc_123", "DELETE /auth/client-credentials"),
        ("GET /auth/roles", "GET /auth/roles"),
        ("create", "create"),
        ("deliver", "deliver"),
    ],
)
def test_retry_labels_never_carry_ids(call: str, label: str) -> None:
    assert call_label(call) == label


class Recorder(BaseHTTPRequestHandler):
    """Records each request to the server; answers like a Pushgateway."""

    pushes: list[tuple[str, str, str]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        self.server.pushes.append((self.command, self.path, body))  # type: ignore[attr-defined]
        self.send_response(200)
        self.end_headers()

    do_PUT = do_POST

    def log_message(self, format: str, *args: Any) -> None:
        return None  # keep test output quiet


@pytest.fixture
def gateway() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    server.pushes = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_pushgateway_receives_the_run(
    sim: Served, workdir: Path, gateway: ThreadingHTTPServer
) -> None:
    url = f"http://127.0.0.1:{gateway.server_address[1]}"
    result = run_cli("apply", "manifests", "--pushgateway", url, cwd=workdir, env=sim.env())
    assert result.returncode == 0, result.stderr
    [(method, path, body)] = gateway.pushes  # type: ignore[attr-defined]
    assert (method, path) == ("POST", "/metrics/job/streamkap_provisioner")
    found = samples(body)
    assert value(found, "provisioner_actions_total", action="create", outcome="ok") == 12
    assert LAST_SUCCESS in {name for name, _ in found}


def test_an_unreachable_pushgateway_is_logged_and_fails_nothing(sim: Served, workdir: Path) -> None:
    url = "http://127.0.0.1:9"  # discard port: nothing listens
    result = run_cli("apply", "manifests", "--pushgateway", url, cwd=workdir, env=sim.env())
    assert result.returncode == 0, result.stderr
    assert '"event": "metrics.push_failed"' in result.stderr
    assert human_text(result.stderr).rstrip().endswith("0 failed.")
