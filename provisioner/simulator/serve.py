"""Serve an ASGI app (the simulator) with uvicorn on a real socket, in a thread or in a task.

The server uses uvicorn's h11 protocol extended with the `DROP_EXTENSION` scope extension, so a
simulated dropped connection really closes the socket: the client then sees
`httpx.RemoteProtocolError` ("Server disconnected without sending a response.").
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.h11_impl import H11Protocol

from provisioner.simulator.faults import DROP_EXTENSION

#: Seconds in-flight requests get to finish when the server stops.
GRACEFUL_SHUTDOWN = 5


class _DroppingH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, offering the app a way to close its connection unanswered."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lost = asyncio.Event()
        # uvicorn calls `self.app` for each request of this connection (an implementation
        # detail checked by the socket tests): wrap it to hand the app this connection's hook.
        inner = self.app

        async def app(scope: Any, receive: Any, send: Any) -> None:
            extensions = {**(scope.get("extensions") or {}), DROP_EXTENSION: {"drop": self._drop}}
            await inner({**scope, "extensions": extensions}, receive, send)

        self.app = app

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        # asyncio sets TCP_NODELAY only on sockets made with proto=IPPROTO_TCP, and ours come
        # from socket.create_server (proto 0): without it, Nagle's algorithm holds the body of
        # each answer until the client's delayed ACK, adding ~40 ms to every call.
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._lost.set()

    async def _drop(self) -> None:
        # Waiting for connection_lost marks the request disconnected, so uvicorn neither logs
        # "returned without starting response" nor tries to send its own 500.
        self.transport.close()
        await self._lost.wait()


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to its caller and reports when it is up."""

    def __init__(self, config: uvicorn.Config, on_started: Callable[[], object]) -> None:
        super().__init__(config)
        self._on_started = on_started

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            self._on_started()


def _server(
    app: ASGIApp,
    on_started: Callable[[], object],
    log_level: str | None,
    ssl_certfile: str | None = None,
) -> _Server:
    config = uvicorn.Config(
        app,
        http=_DroppingH11Protocol,
        ws="none",
        lifespan="off",
        loop="asyncio",
        log_config=None,  # leave the process's logging configuration alone
        log_level=log_level,
        access_log=False,
        proxy_headers=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN,
        # One PEM holding the key and the certificate chain (e.g. trustme's) serves TLS.
        ssl_certfile=ssl_certfile,
        ssl_keyfile=ssl_certfile,
    )
    return _Server(config, on_started)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family)


def _base_url(sock: socket.socket, scheme: str = "http") -> str:
    host, port = sock.getsockname()[:2]
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


def _wait_started(
    ready: threading.Event, thread: threading.Thread, timeout: float, url: str
) -> None:
    # Poll so that a server thread dying at startup fails fast instead of after the timeout.
    deadline = time.monotonic() + timeout
    while not ready.wait(0.01):
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the server at {url} did not start")


@contextlib.contextmanager
def serve_in_thread(
    app: ASGIApp,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    timeout: float = 10.0,
    ssl_certfile: str | None = None,
) -> Iterator[str]:
    """Serve `app` from a background thread while the block runs; yields the base URL.

    Port 0 picks a free port. `ssl_certfile` (a PEM with the key and the certificate chain)
    serves HTTPS. On exit the server stops accepting, lets in-flight requests finish, and the
    thread is joined.
    """
    ready = threading.Event()
    server = _server(app, ready.set, log_level=None, ssl_certfile=ssl_certfile)
    with _bind(host, port) as sock:
        url = _base_url(sock, "https" if ssl_certfile else "http")
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name=f"simulator {url}", daemon=True
        )
        thread.start()
        try:
            _wait_started(ready, thread, timeout, url)
            yield url
        finally:
            server.should_exit = True
            thread.join(timeout + GRACEFUL_SHUTDOWN)


async def serve_forever(
    app: ASGIApp,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    on_ready: Callable[[str], object] | None = None,
    log_level: str | None = None,
) -> None:
    """Serve `app` until cancelled, then shut down gracefully (asyncio backend only).

    `on_ready` receives the base URL once the server accepts connections. Signals are the
    caller's to handle: cancel this task on SIGINT/SIGTERM (e.g. via anyio.open_signal_receiver).
    """
    with _bind(host, port) as sock:
        url = _base_url(sock)

        def started() -> None:
            if on_ready is not None:
                on_ready(url)

        server = _server(app, started, log_level=log_level)
        stopped = anyio.Event()

        async def run() -> None:
            # Shielded: cancelling serve_forever means "shut down", not "abandon the sockets".
            with anyio.CancelScope(shield=True):
                try:
                    await server.serve(sockets=[sock])
                finally:
                    stopped.set()

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(run)
            try:
                await stopped.wait()
            finally:
                server.should_exit = True
