"""A CLI subprocess whose stderr is read as it comes, so tests wait on log events, not on time."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

Event = dict[str, Any]


class Watched:
    """A running `python -m provisioner ARGS`; every stderr line is kept, JSON ones parsed."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self.lines.append("")  # end of output: wakes waiters one last time
            self._changed.notify_all()

    def events(self) -> list[Event]:
        """The structured log events so far, in order."""
        with self._changed:
            lines = list(self.lines)
        return [json.loads(line) for line in lines if line.startswith("{")]

    def wait_event(self, name: str, timeout: float = 20, **fields: Any) -> Event:
        """The first event named `name` whose fields include `fields`; fail after `timeout`."""

        def match(event: Event) -> bool:
            return event.get("event") == name and all(event.get(k) == v for k, v in fields.items())

        return self.wait_for(match, timeout, f"{name} {fields}")

    def wait_for(self, match: Callable[[Event], bool], timeout: float, what: str) -> Event:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [e for e in self.events() if match(e)]
                if found:
                    return found[0]
                left = deadline - time.monotonic()
                ended = self.process.poll() is not None and not self._reader.is_alive()
                if left <= 0 or ended:
                    raise AssertionError(f"no {what} in:\n" + "\n".join(self.lines))
                self._changed.wait(left)

    def wait_line(self, prefix: str, timeout: float = 20) -> str:
        """The first plain stderr line that starts with `prefix`; fail after `timeout`."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [line for line in self.lines if line.startswith(prefix)]
                if found:
                    return found[0]
                left = deadline - time.monotonic()
                ended = self.process.poll() is not None and not self._reader.is_alive()
                if left <= 0 or ended:
                    raise AssertionError(f"no line {prefix!r} in:\n" + "\n".join(self.lines))
                self._changed.wait(left)

    def stop(self, signum: int, timeout: float = 20) -> int:
        """Send `signum` and wait for the process to exit; its exit code."""
        self.process.send_signal(signum)
        code = self.process.wait(timeout)
        self._reader.join(timeout)
        return code

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@contextmanager
def watched(*args: str | Path, cwd: Path, env: Mapping[str, str]) -> Iterator[Watched]:
    """Start the CLI; on leaving the block, kill it if it still runs."""
    command = [sys.executable, "-m", "provisioner", *map(str, args)]
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=dict(env),
        text=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    running = Watched(process)
    try:
        yield running
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)
        running._reader.join(10)  # reads to EOF, then the pipe can be closed
        if process.stderr is not None:
            process.stderr.close()
