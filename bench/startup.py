"""Start-up against its floors, and the default manifest limits at 100k credentials.

Every command is a fresh process; the commands of one comparison are run in turn, round after
round, so a busier minute weighs on all of them alike, and each figure is the fastest of its
rounds (start-up has a floor; what is above it is the machine's noise).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from bench import workload
from bench.simserver import clean_env

TIMEOUT = 600.0

#: The floor `validate` is held to: its libraries alone, reading and validating one credential.
FLOOR = """\
import yaml, structlog
from pydantic import BaseModel
class Credential(BaseModel):
    name: str
    roles: list[str]
Credential.model_validate(yaml.safe_load("{name: ingest, roles: [admin]}"))
"""

ONE_CREDENTIAL = """\
version: 1
sinks:
  local: {type: file, path: ./secrets}
services:
  - name: payments-api
    credentials:
      - name: ingest
        description: Ingest pipeline for payments
        roles: [admin]
        sinks: [local]
"""

#: What `validate` prints at exit of its peak memory (VmHWM: ru_maxrss would survive exec).
VALIDATE_PEAK = (
    "import sys\n"
    "from provisioner.cli import main\n"
    "code = main(['validate', *sys.argv[1:]])\n"
    "status = open('/proc/self/status').read()\n"
    "print(code, int(status.split('VmHWM:')[1].split()[0]) * 1024)\n"
)


def provisioner(*args: str) -> list[str]:
    """The installed console script, as users run it; `python -m provisioner` without one."""
    script = Path(sys.executable).with_name("provisioner")
    return [str(script), *args] if script.exists() else [sys.executable, "-m", "provisioner", *args]


def fastest(commands: Mapping[str, Sequence[str]], rounds: int, cwd: Path) -> dict[str, float]:
    """The fastest wall time of each command over `rounds` rounds, run in turn."""
    best = dict.fromkeys(commands, float("inf"))
    for _ in range(rounds):
        for name, command in commands.items():
            started = time.perf_counter()
            subprocess.run(
                command,
                cwd=cwd,
                env=clean_env(),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                check=True,
                timeout=TIMEOUT,
            )
            best[name] = min(best[name], time.perf_counter() - started)
    return best


def startup(rounds: int) -> dict[str, float]:
    """`--version` and `validate` of one credential, with their floors, side by side."""
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        root = Path(tmp)
        (root / "one.yaml").write_text(ONE_CREDENTIAL, encoding="utf-8")
        commands = {
            "python": [sys.executable, "-c", "pass"],
            "version": provisioner("--version"),
            "floor": [sys.executable, "-c", FLOOR],
            "validate": provisioner("validate", "one.yaml"),
        }
        return fastest(commands, rounds, root)


def validate_at_scale(count: int, files: int) -> tuple[int, float, float]:
    """`validate` of `count` credentials in `files` team manifests, at the default limits:
    its exit code, wall seconds and peak RSS in bytes."""
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        root = Path(tmp)
        workload.write_team_manifests(root / "teams", count, files)
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", VALIDATE_PEAK, str(root / "teams")],
            env=clean_env(),
            capture_output=True,
            check=True,
            timeout=TIMEOUT,
        )
        wall = time.perf_counter() - started
    code, peak = done.stdout.decode().split()[-2:]
    return int(code), wall, float(peak)
