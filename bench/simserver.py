"""The simulator served by `python -m provisioner simulate` in its own process, on a free port."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

STARTUP_TIMEOUT = 20.0


@dataclass(frozen=True)
class Faults:
    """The simulator's fault flags a scenario needs."""

    latency: float = 0.0
    rate_limit: float | None = None
    burst: int = 10
    slow_activation: float | None = None  # seconds a project key stays `creating`

    def flags(self) -> list[str]:
        flags = ["--latency", str(self.latency), "--burst", str(self.burst)]
        if self.rate_limit is not None:
            flags += ["--rate-limit", str(self.rate_limit)]
        if self.slow_activation is not None:
            flags += ["--slow-activation", str(self.slow_activation)]
        return flags


def clean_env() -> dict[str, str]:
    """This environment without provisioner settings, so no stray variable changes a run."""
    prefixes = ("STREAMKAP_", "PROVISIONER_", "VAULT_")
    return {key: value for key, value in os.environ.items() if not key.startswith(prefixes)}


@contextmanager
def simulator(faults: Faults) -> Iterator[str]:
    """Serve a fresh simulator in a subprocess while the block runs; yields its base URL."""
    port = _free_port()
    command = [sys.executable, "-m", "provisioner", "simulate", "--port", str(port)]
    process = subprocess.Popen(
        [*command, *faults.flags()],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=clean_env(),
    )
    try:
        _wait_ready(port, process)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_ready(port: int, process: subprocess.Popen[bytes]) -> None:
    """Wait until the server answers HTTP (an unauthenticated call: 401)."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the simulator exited with {process.returncode}")
        if _answers(port):
            return
        time.sleep(0.05)
    raise RuntimeError("the simulator did not start")


def _answers(port: int) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        connection.request("GET", "/auth/roles")
        return connection.getresponse().status == 401
    except OSError:
        return False
    finally:
        connection.close()
