"""The `--report FILE` document, checked against real runs of the CLI."""

from __future__ import annotations

import json
import re
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from provisioner.cli.render import run_report
from provisioner.model import Action, Kind, Outcome, Plan, Reason, Status
from tests.support.served import Served, human_text, run_cli

MANIFEST = """\
version: 1
defaults: {roles: [read_only], sinks: [files]}
sinks:
  files: {type: file, path: ./secrets}
  broken: {type: file, path: ./blocked}
services:
  - name: shop
    credentials:
      - name: web
      - name: jobs
      - name: lost
        sinks: [broken]
"""
ENTRY_KEYS = ["key", "action", "reason", "client_id", "status", "error"]


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / "shop.yaml").write_text(MANIFEST)
    (tmp_path / "blocked").write_text("a file where a directory should be")
    return tmp_path


def apply(sim: Served, workdir: Path, *extra: str) -> tuple[int, str, dict[str, Any]]:
    result = run_cli(
        "apply", "manifests", "--report", "report.json", *extra, cwd=workdir, env=sim.env()
    )
    return result.returncode, result.stderr, json.loads((workdir / "report.json").read_text())


def test_report_matches_the_run(sim: Served, workdir: Path) -> None:
    code, stderr, report = apply(sim, workdir)
    assert code == 1
    assert re.fullmatch(r"[0-9a-f]{12}", report["run_id"])
    started, finished = map(datetime.fromisoformat, (report["started_at"], report["finished_at"]))
    assert started.utcoffset() == timedelta(0)
    assert started <= finished
    summary = report["summary"]
    contract = {"created": 2, "replaced": 0, "deleted": 0, "unchanged": 0, "failed": 0}
    assert {name: summary[name] for name in contract} == contract
    assert summary["blocked"] == 1  # could not be planned: counted apart from failures
    assert human_text(stderr).rstrip().splitlines()[-1] == (
        "Applied: 2 created, 0 replaced, 0 deleted, 0 unchanged, 0 failed, 1 could not be planned."
    )
    entries = {entry["key"]: entry for entry in report["actions"]}
    assert all(set(ENTRY_KEYS) <= set(entry) for entry in entries.values())
    live = {record.client_id for record in sim.state.live()}
    for key in ("shop/web", "shop/jobs"):
        assert entries[key]["action"] == "create"
        assert entries[key]["reason"] == "missing"
        assert entries[key]["status"] == "ok"
        assert entries[key]["error"] is None
        assert entries[key]["client_id"] in live
    assert entries["shop/lost"]["status"] == "failed"
    assert "sink 'broken'" in entries["shop/lost"]["error"]


def test_report_never_holds_a_secret(sim: Served, workdir: Path) -> None:
    apply(sim, workdir)
    text = (workdir / "report.json").read_text()
    secrets = [sim.state.secret_of(record.client_id) for record in sim.state.live()]
    assert secrets
    assert not [secret for secret in secrets if secret in text]
    assert "secret" not in text.lower()


def test_report_of_a_converged_run_lists_unchanged_credentials(sim: Served, workdir: Path) -> None:
    (workdir / "blocked").unlink()
    apply(sim, workdir)
    code, _, report = apply(sim, workdir)
    assert code == 0
    assert report["summary"]["unchanged"] == 3
    assert {(e["action"], e["reason"], e["status"]) for e in report["actions"]} == {
        ("noop", "up-to-date", "ok")
    }
    assert {e["client_id"] for e in report["actions"]} == {r.client_id for r in sim.state.live()}


def test_a_report_that_cannot_be_written_fails_the_run(sim: Served, workdir: Path) -> None:
    (workdir / "blocked").unlink()
    (workdir / "report.json").mkdir()  # a directory where the report should go
    result = run_cli("apply", "manifests", "--report", "report.json", cwd=workdir, env=sim.env())
    assert result.returncode == 1
    assert '"event": "report.write_failed"' in result.stderr
    assert (
        human_text(result.stderr)
        .rstrip()
        .endswith("3 created, 0 replaced, 0 deleted, 0 unchanged, 0 failed.")
    )


def test_a_report_in_a_missing_directory_gets_it_made_0700(sim: Served, workdir: Path) -> None:
    """Issue 22: as sinks make theirs (it used to be refused, exit 2)."""
    result = run_cli("apply", "manifests", "--report", "out/x/r.json", cwd=workdir, env=sim.env())
    assert result.returncode == 1, result.stderr  # shop/lost is blocked, as in every test here
    assert json.loads((workdir / "out" / "x" / "r.json").read_text())["summary"]["created"] == 2
    for made in (workdir / "out", workdir / "out" / "x"):
        assert stat.S_IMODE(made.stat().st_mode) == 0o700


def test_a_report_whose_directory_cannot_be_made_is_refused_before_any_call(
    sim: Served, workdir: Path
) -> None:
    (workdir / "no").write_text("a file, not a directory")
    result = run_cli(
        "apply", "manifests", "--report", "no/such/dir/r.json", cwd=workdir, env=sim.env()
    )
    assert result.returncode == 2
    assert "--report no/such/dir/r.json: cannot create directory" in result.stderr
    assert sim.state.calls() == []


def test_a_write_that_never_started_is_reported_skipped() -> None:
    """E.g. the second action of a credential whose sink could not be read."""
    keep = Action(Kind.NOOP, "a/b", Reason.UP_TO_DATE, client_id="cc_1")
    duplicate = Action(Kind.DELETE, "a/b", Reason.DUPLICATE, client_id="cc_2")
    orphan = Action(Kind.NOOP, "c/d", Reason.ORPHAN, client_id="cc_3")
    plan = Plan((keep, duplicate, orphan))
    now = datetime.now(UTC)
    report = run_report("r1", now, now, plan, [Outcome(keep, Status.FAILED, error="blocked")])
    statuses = [(e["status"], e["error"]) for e in report["actions"]]
    assert statuses == [("failed", "blocked"), ("skipped", "not attempted"), ("ok", None)]
