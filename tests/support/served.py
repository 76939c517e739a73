"""Helpers for end-to-end tests: the simulator on a real socket and the CLI as a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from provisioner.simulator import (
    ADMIN_CLIENT_ID,
    ADMIN_SECRET,
    SimulatorState,
    create_app,
    serve_in_thread,
)
from tests.support.cli_env import REPO, cli_env

__all__ = ["REPO", "Served", "human_text", "run_cli", "served"]


@dataclass
class Served:
    """A simulator served over a real socket, and how to point the CLI at it."""

    url: str
    state: SimulatorState

    def env(self, **extra: str) -> dict[str, str]:
        return cli_env(
            self.url, ADMIN_CLIENT_ID, ADMIN_SECRET, **{"PROVISIONER_MAX_ATTEMPTS": "6", **extra}
        )


@contextmanager
def served(state: SimulatorState | None = None) -> Iterator[Served]:
    state = state or SimulatorState()
    with serve_in_thread(create_app(state)) as url:
        yield Served(url, state)


def human_text(stderr: str) -> str:
    """The human lines of a JSON-mode stderr: each event's `message`, other lines as they are."""
    lines = []
    for line in stderr.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            lines.append(line)
            continue
        lines.append(event.get("message", line) if isinstance(event, dict) else line)
    return "\n".join(lines)


def run_cli(
    *args: str | Path,
    cwd: Path,
    env: Mapping[str, str],
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run `python -m provisioner ARGS` in a real subprocess and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "provisioner", *map(str, args)],
        cwd=cwd,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
