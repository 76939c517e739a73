"""The fake on a real loopback socket: uvicorn in a thread, while a `with` block runs."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import uvicorn

from tests.support.cli_env import cli_env
from tests.support.fake_api.app import create_fake_app
from tests.support.fake_api.state import ADMIN_CLIENT_ID, ADMIN_SECRET, FakeApi


@dataclass
class ServedFake:
    """A fake served at `url`, and the environment that points a provisioner subprocess at it."""

    url: str
    fake: FakeApi

    def env(self, **extra: str) -> dict[str, str]:
        return cli_env(self.url, ADMIN_CLIENT_ID, ADMIN_SECRET, **extra)


@contextmanager
def serve_fake(fake: FakeApi | None = None, *, timeout: float = 10.0) -> Iterator[ServedFake]:
    """Serve `fake` (a new one by default) on 127.0.0.1 at a free port while the block runs."""
    fake = fake or FakeApi()
    config = uvicorn.Config(
        create_fake_app(fake), lifespan="off", log_config=None, access_log=False, ws="none"
    )
    server = uvicorn.Server(config)  # in a thread: it leaves signals alone
    with socket.create_server(("127.0.0.1", 0)) as sock:
        host, port = sock.getsockname()[:2]
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="fake api", daemon=True
        )
        thread.start()
        try:
            _wait_started(server, thread, timeout)
            yield ServedFake(f"http://{host}:{port}", fake)
        finally:
            server.should_exit = True
            thread.join(timeout)


def _wait_started(server: uvicorn.Server, thread: threading.Thread, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the fake API did not start")
        time.sleep(0.01)
