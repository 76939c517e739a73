"""Run a documented console block as a reader would type it: one bash, one command after another.

Each command's output goes to its own file and its exit status is checked before the next one
runs (what `set -e` does, but naming the command that failed). A command ending in `&` starts a
background server: the next command waits until the ports it was told to serve on accept
connections, as a reader would before typing on. Background jobs are stopped at the end.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tests.support.aws_support import free_port
from tests.support.doc_blocks import Command, ConsoleBlock

BLOCK_TIMEOUT = 45.0  # seconds for a whole block; the documented ones take a few

_PRELUDE = r"""
set -u -o pipefail
__docs_stop() {
    local pids
    pids=$(jobs -p)
    if [ -n "$pids" ]; then kill $pids 2>/dev/null; wait $pids 2>/dev/null; fi
    return 0
}
__docs_wait_ports() {  # until each port accepts a connection, or the server has exited
    local port
    for port in "$@"; do
        for _ in $(seq 400); do
            (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && continue 2
            kill -0 "$!" 2>/dev/null || { echo "the background server exited" >&2; return 1; }
            sleep 0.025
        done
        echo "port $port never opened" >&2
        return 1
    done
}
"""

_STEP = """
{{
{text}
}} >"$DOCS_OUT/{index}.out" 2>&1
status=$?
echo "$status" >"$DOCS_OUT/{index}.rc"
if [ "$status" -ne {expected} ]; then __docs_stop; exit 1; fi
"""


@dataclass(frozen=True)
class Step:
    command: Command
    exit_code: int | None  # None: never ran (an earlier command failed)
    output: str


@dataclass(frozen=True)
class BlockRun:
    steps: tuple[Step, ...]
    log: str  # the script's own output: why it stopped, if it did

    def first_failure(self) -> Step | None:
        for step in self.steps:
            if step.exit_code != step.command.expected_exit:
                return step
        return None


def run_block(block: ConsoleBlock, work: Path, env: Mapping[str, str]) -> BlockRun:
    """Run every command of the block in one bash in `work`; free ports for the ones it names."""
    ports = {old: free_port() for command in block.commands for old in command.ports}
    commands = [_on_ports(command, ports) for command in block.commands]
    out = work.parent / "docs-out"
    out.mkdir()
    script = work.parent / "block.sh"
    script.write_text(_script(commands))
    process = subprocess.Popen(
        ["bash", str(script)],
        cwd=work,
        env={**env, "DOCS_OUT": str(out)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: nothing it started outlives the test
    )
    try:
        log, _ = process.communicate(timeout=BLOCK_TIMEOUT)
    except subprocess.TimeoutExpired:
        log = f"the block did not finish within {BLOCK_TIMEOUT:.0f} s"
    finally:
        _kill_group(process)
    steps = tuple(_step(command, out, index) for index, command in enumerate(commands))
    return BlockRun(steps, log)


def docs_env(home: Path, repo: Path) -> dict[str, str]:
    """A reader's shell: `provisioner` of this venv on PATH, none of the caller's credentials.

    Console logs, as on a terminal (the documented output is a terminal's), without colour.
    """
    scripts = Path(sys.executable).parent
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("STREAMKAP_", "PROVISIONER_", "VAULT_", "AWS_", "KUBE"))
    }
    env.update(
        PATH=os.pathsep.join([str(scripts), env.get("PATH", "")]),
        PYTHONPATH=os.pathsep.join(filter(None, [str(repo), os.environ.get("PYTHONPATH")])),
        HOME=str(home),  # no ~/.vault-token or ~/.kube/config of the caller's
        PROVISIONER_LOG_FORMAT="console",
        NO_COLOR="1",
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
    )
    return env


def provisioner_on_path(env: Mapping[str, str]) -> bool:
    return shutil.which("provisioner", path=env["PATH"]) is not None


def normalised(line: str) -> str:
    """A line with what differs from run to run (client ids, times) blanked, trailing blanks cut."""
    line = re.sub(r"\bcc_[0-9a-f]+\b", "cc_*", line)
    line = re.sub(r"\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z\b", "<time>", line)
    return line.rstrip()


def missing_lines(shown: tuple[str, ...], actual: str) -> list[str]:
    """The shown lines (`...` elides) that the actual output lacks, in the order shown."""
    lines = [normalised(line) for line in actual.splitlines()]
    position = 0
    missing = []
    for line in shown:
        if line.strip() in {"", "..."}:
            continue
        try:
            position = lines.index(normalised(line), position) + 1
        except ValueError:
            missing.append(line)
    return missing


def _script(commands: list[Command]) -> str:
    steps = []
    for index, command in enumerate(commands):
        steps.append(_STEP.format(text=command.text, index=index, expected=command.expected_exit))
        if command.background and command.ports:
            steps.append(f"__docs_wait_ports {' '.join(map(str, command.ports))} || exit 1\n")
    return _PRELUDE + "".join(steps) + "__docs_stop\n"


def _on_ports(command: Command, ports: Mapping[int, int]) -> Command:
    text, output = command.text, command.output
    for old, new in ports.items():
        pattern = rf"(?<!\d){old}(?!\d)"
        text = re.sub(pattern, str(new), text)
        output = tuple(re.sub(pattern, str(new), line) for line in output)
    return Command(text, output)


def _step(command: Command, out: Path, index: int) -> Step:
    status = out / f"{index}.rc"
    output = out / f"{index}.out"
    return Step(
        command,
        int(status.read_text()) if status.exists() else None,
        output.read_text(errors="replace") if output.exists() else "",
    )


def _kill_group(process: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):  # the block stopped its own jobs
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
