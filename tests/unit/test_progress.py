"""The live progress display: shown on a terminal only, counting outcomes, logs above it."""

from __future__ import annotations

import io
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
import structlog
from rich.console import Console

from provisioner.cli.progress import LiveProgress, Tracker, tracker_for
from provisioner.logs import configure_logging
from provisioner.model import Action, Kind, Outcome, Plan, Reason, Status
from tests.support.served import Served

ACTIONS = (
    Action(Kind.CREATE, "a/one", Reason.MISSING),
    Action(Kind.CREATE, "a/two", Reason.MISSING),
    Action(Kind.REPLACE, "a/three", Reason.ROTATION),
    Action(Kind.NOOP, "a/four", Reason.UP_TO_DATE),
)


def terminal() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=True, width=160, color_system=None), out


def test_the_display_counts_done_total_and_outcomes() -> None:
    console, out = terminal()
    with LiveProgress(console) as progress:
        progress.on_plan(Plan(ACTIONS))
        progress.on_outcome(Outcome(ACTIONS[0], Status.OK, client_id="cc_1"))
        progress.on_outcome(Outcome(ACTIONS[1], Status.OK, client_id="cc_2"))
        progress.on_outcome(Outcome(ACTIONS[2], Status.FAILED, error="boom"))
    final = out.getvalue().rsplit("apply", 1)[-1]  # the last redraw
    assert "3/3" in final
    assert "2 created, 0 replaced, 0 deleted, 1 failed" in final
    assert "/s" in final


def test_log_lines_print_above_the_display_and_logging_is_restored() -> None:
    configure_logging("info", "json", io.StringIO())
    before = structlog.get_config()["logger_factory"]
    console, out = terminal()
    with LiveProgress(console) as progress:
        progress.on_plan(Plan(ACTIONS))
        structlog.get_logger("test").info("credential.created", key="a/one")
    assert '"event": "credential.created"' in out.getvalue()
    assert structlog.get_config()["logger_factory"] is before


def test_no_display_off_a_terminal_or_when_disabled() -> None:
    assert type(tracker_for(True, io.StringIO())) is Tracker
    assert type(tracker_for(False, sys.stderr)) is Tracker


def run_on_terminal(sim: Served, cwd: Path, *extra: str) -> tuple[int, str]:
    """Run `apply` with stderr on a pseudo-terminal; its exit code and what the terminal got."""
    controller, terminal_end = pty.openpty()
    env = sim.env(
        TERM="xterm", COLUMNS="160", PROVISIONER_LOG_LEVEL="warning", PROVISIONER_LOG_FORMAT="auto"
    )
    command = [sys.executable, "-m", "provisioner", "apply", "manifests", *extra]
    with subprocess.Popen(
        command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=terminal_end,
    ) as process:  # fmt: skip
        os.close(terminal_end)
        output = read_until_closed(controller, deadline=time.monotonic() + 30)
        code = process.wait(10)
    os.close(controller)
    return code, output


def read_until_closed(fd: int, deadline: float) -> str:
    chunks: list[bytes] = []
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], deadline - time.monotonic())
        try:
            data = os.read(fd, 65536) if ready else b""
        except OSError:  # EIO: the child closed its end
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks).decode(errors="replace")


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "manifests").mkdir()
    credentials = "\n".join(f"      - name: c{index}" for index in range(20))
    (tmp_path / "manifests" / "m.yaml").write_text(
        "version: 1\ndefaults: {roles: [read_only], sinks: [files]}\n"
        "sinks:\n  files: {type: file, path: ./secrets}\n"
        f"services:\n  - name: tty\n    credentials:\n{credentials}\n"
    )
    return tmp_path


def test_apply_on_a_terminal_shows_progress(sim: Served, workdir: Path) -> None:
    code, output = run_on_terminal(sim, workdir)
    assert code == 0, output
    assert "20/20" in output
    assert "20 created, 0 replaced, 0 deleted, 0 failed" in output
    assert "Applied: 20 created" in output


def test_no_progress_keeps_the_terminal_plain(sim: Served, workdir: Path) -> None:
    code, output = run_on_terminal(sim, workdir, "--no-progress")
    assert code == 0, output
    assert "20/20" not in output
    assert "Applied: 20 created" in output
