"""The aiohttp transport: httpx errors that say truly whether a request may have been sent."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from pydantic import SecretStr

from provisioner.errors import AmbiguousCreate, RequestFailed
from provisioner.simulator import serve_in_thread
from provisioner.streamkap import ApiConfig, Requests, StreamkapClient
from tests.support.factories import desired, no_sleep
from tests.support.http import aiohttp_pool, send


@contextmanager
def misbehaving(behaviour: str) -> Iterator[str]:
    """A TCP server that reads each request, then closes, stalls, answers garbage, or (as a
    proxy) refuses to open a tunnel."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)  # so the loop sees `stop` soon
    stop = threading.Event()
    connections: list[socket.socket] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(5)
            connections.append(conn)
            conn.recv(65536)  # the request (small enough for one read)
            if behaviour == "close":
                conn.close()
            elif behaviour == "garbage":
                conn.sendall(b"this is not HTTP\r\n\r\n")
                conn.close()
            elif behaviour == "refuse-tunnel":
                conn.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\n")
                conn.sendall(b"Content-Length: 0\r\n\r\n")
            # "stall": keep the connection open and never answer

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        listener.close()
        for conn in connections:
            conn.close()
        thread.join(5)


def refused_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def token_client(url: str, max_attempts: int = 6) -> StreamkapClient:
    config = ApiConfig(url, access_token=SecretStr("t"), max_attempts=max_attempts)
    return StreamkapClient(Requests(config, sleep=no_sleep))


async def send_one(url: str, read_timeout: float = 5.0) -> httpx.Response:
    pool = aiohttp_pool(url, concurrency=1, timeout=read_timeout)
    try:
        return await send(pool, "POST", "/auth/client-credentials", json={})
    finally:
        await pool.aclose()


@pytest.mark.anyio
async def test_a_refused_connection_is_a_connect_error() -> None:
    with pytest.raises(httpx.ConnectError):
        await send_one(refused_url())


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("behaviour", "error"),
    [
        ("close", httpx.RemoteProtocolError),
        ("garbage", httpx.RemoteProtocolError),
        ("stall", httpx.ReadTimeout),
    ],
)
async def test_a_failure_after_sending_is_never_a_connect_error(
    behaviour: str, error: type[Exception]
) -> None:
    with misbehaving(behaviour) as url, pytest.raises(error) as caught:
        await send_one(url, read_timeout=0.5)
    assert not isinstance(caught.value, httpx.ConnectError | httpx.ConnectTimeout)


@pytest.mark.anyio
async def test_a_create_whose_answer_is_lost_is_ambiguous_not_retried_blindly() -> None:
    with misbehaving("close") as url:
        client = token_client(url)
        async with client:
            with pytest.raises(AmbiguousCreate):
                await client.credentials.create(desired())


@pytest.mark.anyio
async def test_a_create_that_could_not_connect_is_retried_then_reported_unsent() -> None:
    client = token_client(refused_url(), max_attempts=3)
    async with client:
        with pytest.raises(RequestFailed) as caught:
            await client.credentials.create(desired())
    assert caught.value.sent is False


async def ok(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture
def tls_url(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    ca = trustme.CA()
    pem, ca_file = tmp_path / "server.pem", tmp_path / "ca.pem"
    ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(pem))
    ca.cert_pem.write_to_path(str(ca_file))
    with serve_in_thread(ok, ssl_certfile=str(pem)) as url:
        yield url, ca_file


@pytest.mark.anyio
async def test_tls_is_verified(tls_url: tuple[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    url, ca_file = tls_url
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    with pytest.raises(httpx.ConnectError, match="certificate"):
        await send_one(url)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    assert (await send_one(url)).text == "ok"


@pytest.mark.anyio
async def test_a_proxy_refusing_the_tunnel_is_a_proxy_error_without_its_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with misbehaving("refuse-tunnel") as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.replace("http://", "http://user:pr0xy-pw@"))
        monkeypatch.delenv("NO_PROXY", raising=False)
        with pytest.raises(httpx.ProxyError) as caught:
            await send_one("https://api.example.invalid")
        client = token_client("https://api.example.invalid")
        async with client:
            with pytest.raises(RequestFailed) as unsent:
                await client.credentials.create(desired())
    assert "407" in str(caught.value)
    assert "pr0xy-pw" not in repr(caught.value)
    assert caught.value.__cause__ is None  # aiohttp's error, holding the login, is not chained
    assert caught.value.__suppress_context__
    assert unsent.value.sent is False  # the API never saw it: safe to retry, not ambiguous
