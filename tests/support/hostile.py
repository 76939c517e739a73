"""A misbehaving HTTP server on loopback for tests: reflects, drips, floods, truncates.

Raw sockets in a thread, one thread per connection, so the answer is exactly what a test asks
for (no framework to tidy it up). Every server is bounded: loopback only, a deadline for its whole
life, at most `max_connections` connections, and every answer stops at `max_bytes`.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field

#: Nothing a test serves lives longer or sends more than this.
LIFETIME = 30.0
MAX_BYTES = 512 * 1024 * 1024


@dataclass(frozen=True)
class Request:
    """One request as it arrived: method, path, headers (lower-cased names) and body."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def reflection(self) -> str:
        """The whole request as text, as an echoing server or proxy puts it in an answer."""
        head = "".join(f"{name}: {value}\n" for name, value in self.headers.items())
        return f"{self.method} {self.path}\n{head}\n{self.body.decode(errors='replace')}"


@dataclass
class Answer:
    """How to answer: status, headers and body, plus one of the hostile ways to send it.

    `drip`: seconds between the body's bytes. `flood`: after the body, repeat it without end.
    `truncate`: send only this many bytes of a body whose Content-Length says more.
    """

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})
    drip: float | None = None
    flood: bool = False
    truncate: int | None = None


Handler = Callable[[Request], Answer]


def json_answer(status: int, value: object) -> Answer:
    return Answer(status, json.dumps(value).encode())


def reflect(status: int) -> Handler:
    """Answer every request with `status` and a JSON `detail` that repeats the whole request."""
    return lambda request: json_answer(status, {"detail": request.reflection()})


def drip(body: bytes, interval: float = 0.05) -> Handler:
    """A 200 whose body arrives one byte every `interval` seconds."""
    return lambda request: Answer(200, body, drip=interval)


def flood(chunk: bytes = b"[" + b'{"client_id": "x"},' * 3000) -> Handler:
    """A 200 whose body never ends (a JSON array that never closes)."""
    return lambda request: Answer(200, chunk, flood=True)


def truncated(body: bytes, keep: int) -> Handler:
    """A 200 that promises `body` and sends only its first `keep` bytes, then closes."""
    return lambda request: Answer(200, body, truncate=keep)


@dataclass
class Hostile:
    """A running server: its base URL and every request it received."""

    url: str
    requests: list[Request] = field(default_factory=list)


@contextmanager
def hostile_server(
    handler: Handler, *, lifetime: float = LIFETIME, max_connections: int = 200
) -> Iterator[Hostile]:
    """Serve `handler` on 127.0.0.1 until the block ends (or `lifetime` passes)."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    server = Hostile(f"http://127.0.0.1:{listener.getsockname()[1]}")
    deadline = time.monotonic() + lifetime
    stop = threading.Event()
    threads: list[threading.Thread] = []
    connections: list[socket.socket] = []

    def over() -> bool:
        return stop.is_set() or time.monotonic() > deadline

    def accept() -> None:
        while not over() and len(threads) < max_connections:
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            connections.append(conn)
            args = (conn, handler, server, over)
            thread = threading.Thread(target=_serve, args=args, daemon=True)
            threads.append(thread)
            thread.start()

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        yield server
    finally:
        stop.set()
        listener.close()
        for conn in connections:
            _close(conn)
        acceptor.join(5)
        for thread in threads:
            thread.join(5)


def _serve(
    conn: socket.socket, handler: Handler, server: Hostile, over: Callable[[], bool]
) -> None:
    """Answer the requests of one keep-alive connection until the client or the server stops."""
    conn.settimeout(0.2)
    buffer = b""
    try:
        while not over():
            request, buffer = _read_request(conn, buffer, over)
            if request is None:
                return
            server.requests.append(request)
            if not _send(conn, handler(request), over):
                return
    except OSError:
        return
    finally:
        _close(conn)


def _read_request(
    conn: socket.socket, buffer: bytes, over: Callable[[], bool]
) -> tuple[Request | None, bytes]:
    while b"\r\n\r\n" not in buffer:
        chunk = _recv(conn, over)
        if not chunk:
            return None, buffer
        buffer += chunk
    head, _, rest = buffer.partition(b"\r\n\r\n")
    first, *lines = head.decode("latin-1").split("\r\n")
    method, path, _ = first.split(" ", 2)
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = _recv(conn, over)
        if not chunk:
            return None, b""
        rest += chunk
    return Request(method, path, headers, rest[:length]), rest[length:]


def _recv(conn: socket.socket, over: Callable[[], bool]) -> bytes:
    while not over():
        try:
            return conn.recv(65536)
        except TimeoutError:
            continue
    return b""


def _send(conn: socket.socket, answer: Answer, over: Callable[[], bool]) -> bool:
    """Send one answer the hostile way asked for; False once the connection must close."""
    headers = dict(answer.headers)
    if not answer.flood:
        headers["Content-Length"] = str(len(answer.body))
    if answer.flood or answer.truncate is not None:
        headers["Connection"] = "close"
    head = f"HTTP/1.1 {answer.status} Whatever\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n"
    if answer.drip is None and answer.truncate is None and not answer.flood:
        # One send: a head and body sent apart wait out the client's delayed ACK (~40 ms).
        conn.sendall(head.encode("latin-1") + answer.body)
        return True
    conn.sendall(head.encode("latin-1"))
    if answer.drip is not None:
        for byte in answer.body:
            if over():
                return False
            conn.sendall(bytes([byte]))
            time.sleep(answer.drip)
        return True
    if answer.truncate is not None:
        conn.sendall(answer.body[: answer.truncate])
        return False
    conn.sendall(answer.body)
    sent = len(answer.body)
    while answer.flood and sent < MAX_BYTES and not over():
        conn.sendall(answer.body)  # raises once the client has closed
        sent += len(answer.body)
    return not answer.flood


def _close(conn: socket.socket) -> None:
    with suppress(OSError):
        conn.shutdown(socket.SHUT_RDWR)
    conn.close()
