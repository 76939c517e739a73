"""Output fit for cron and log shippers: quiet at `warning` when nothing happened, and JSON-only
stderr in JSON mode (issue 15, points 1 and 2)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.served import Served, run_cli

MANIFEST = """\
version: 1
sinks:
  files: {type: file, path: ./secrets}
services:
  - name: shop
    credentials:
      - name: web
        roles: [read_only]
        sinks: [files]
"""
BROKEN_SINK = """\
version: 1
sinks:
  broken: {type: file, path: ./blocked}
services:
  - name: extra
    credentials:
      - name: one
        roles: [read_only]
        sinks: [broken]
"""


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / "shop.yaml").write_text(MANIFEST)
    return tmp_path


def cli(sim: Served, workdir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, cwd=workdir, env=sim.env(**env))


def break_a_sink(workdir: Path) -> None:
    (workdir / "blocked").write_text("a file where a directory should be")
    (workdir / "manifests" / "extra.yaml").write_text(BROKEN_SINK)


@pytest.mark.parametrize("log_format", ["console", "json"])
def test_a_converged_run_at_warning_prints_nothing(
    sim: Served, workdir: Path, log_format: str
) -> None:
    quiet = {"PROVISIONER_LOG_LEVEL": "warning", "PROVISIONER_LOG_FORMAT": log_format}
    first = cli(sim, workdir, "apply", "manifests", **quiet)
    assert first.returncode == 0, first.stderr
    assert "shop/web: missing" in first.stderr  # a change is news: the plan line is shown
    assert "Applied: 1 created, 0 replaced" in first.stderr
    for command in ("apply", "plan", "validate"):
        again = cli(sim, workdir, command, "manifests", **quiet)
        assert again.returncode == 0, again.stderr
        assert again.stderr == "", f"{command}: {again.stderr}"


def test_a_failure_is_still_reported_when_quiet(sim: Served, workdir: Path) -> None:
    break_a_sink(workdir)
    quiet = {"PROVISIONER_LOG_LEVEL": "error", "PROVISIONER_LOG_FORMAT": "console"}
    result = cli(sim, workdir, "apply", "manifests", **quiet)
    assert result.returncode == 1
    # An unwritable sink blocks its credential (issue 13): said even when quiet, and not done.
    assert "cannot plan extra/one: sink 'broken'" in result.stderr
    assert (
        "Applied: 1 created, 0 replaced, 0 deleted, 0 unchanged, 0 failed, 1 could not be planned."
        in result.stderr
    )


def test_at_info_a_converged_run_still_says_so(sim: Served, workdir: Path) -> None:
    console = {"PROVISIONER_LOG_FORMAT": "console", "PROVISIONER_LOG_LEVEL": "info"}
    cli(sim, workdir, "apply", "manifests", **console)
    again = cli(sim, workdir, "apply", "manifests", **console)
    assert "Applied: 0 created, 0 replaced, 0 deleted, 1 unchanged, 0 failed." in again.stderr


def events_of(stderr: str) -> list[dict[str, Any]]:
    """Every stderr line as a JSON object; fails on the first line that is not one."""
    events = []
    for line in stderr.splitlines():
        event = json.loads(line)
        assert isinstance(event, dict), line
        assert "event" in event, line
        events.append(event)
    return events


def test_json_mode_stderr_is_one_json_object_per_line(sim: Served, workdir: Path) -> None:
    as_json = {"PROVISIONER_LOG_FORMAT": "json"}
    validated = events_of(cli(sim, workdir, "validate", "manifests", **as_json).stderr)
    assert validated[-1]["event"] == "manifests.valid"
    assert validated[-1]["credentials"] == 1

    planned = cli(sim, workdir, "plan", "manifests", "--json", **as_json)
    changes = [e for e in events_of(planned.stderr) if e["event"] == "plan.change"]
    assert [(e["key"], e["action"], e["reason"]) for e in changes] == [
        ("shop/web", "create", "missing")
    ]
    assert json.loads(planned.stdout)["summary"]["create"] == 1  # stdout: as it always was

    applied = events_of(cli(sim, workdir, "apply", "manifests", **as_json).stderr)
    summary = next(e for e in applied if e["event"] == "apply.summary")
    assert (summary["created"], summary["failed"]) == (1, 0)


def test_json_mode_failures_and_manifest_errors_are_json_too(sim: Served, workdir: Path) -> None:
    as_json = {"PROVISIONER_LOG_FORMAT": "json"}
    break_a_sink(workdir)
    blocked = cli(sim, workdir, "plan", "manifests", **as_json)
    assert blocked.returncode == 1
    (cannot,) = [e for e in events_of(blocked.stderr) if e["event"] == "plan.blocked"]
    assert cannot["keys"] == ["extra/one"]

    failing = cli(sim, workdir, "apply", "manifests", **as_json)
    assert failing.returncode == 1
    events = events_of(failing.stderr)
    (not_planned,) = [e for e in events if e["event"] == "plan.blocked"]
    assert (not_planned["keys"], not_planned["level"]) == (["extra/one"], "warning")
    assert "sink 'broken'" in not_planned["error"]
    (summary,) = [e for e in events if e["event"] == "apply.summary"]
    assert (summary["blocked"], summary["level"]) == (1, "error")

    (workdir / "manifests" / "bad.yaml").write_text("version: 1\nservices:\n  - name: Bad!\n")
    for command in ("validate", "plan", "apply"):
        invalid = cli(sim, workdir, command, "manifests", **as_json)
        assert invalid.returncode == 2
        (error,) = [e for e in events_of(invalid.stderr) if e["event"] == "manifests.invalid"]
        assert any("services[0].name: invalid name" in p for p in error["problems"])


def test_json_mode_configuration_errors_and_unknown_roles_are_json(
    sim: Served, workdir: Path
) -> None:
    as_json = {"PROVISIONER_LOG_FORMAT": "json"}
    (workdir / "manifests" / "shop.yaml").write_text(MANIFEST.replace("read_only", "raed_only"))
    unknown = cli(sim, workdir, "apply", "manifests", **as_json)
    assert unknown.returncode == 2
    (error,) = [e for e in events_of(unknown.stderr) if e["event"] == "manifests.invalid"]
    (problem,) = error["problems"]
    assert "unknown role 'raed_only'; did you mean" in problem

    no_login = cli(sim, workdir, "plan", "manifests", STREAMKAP_SECRET="", **as_json)
    assert no_login.returncode == 2
    assert events_of(no_login.stderr)[-1]["event"] == "command.failed"
