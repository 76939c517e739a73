"""The connection pool: one httpx client over aiohttp, behind a limiter, on a real socket."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from provisioner.errors import UsageError
from provisioner.simulator import serve_in_thread
from tests.support.http import aiohttp_pool, send


class HoldUntilFull:
    """An ASGI app that holds every request until `expected` are in flight at once."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.in_flight = 0
        self.peak = 0
        self.clients: set[Any] = set()
        self._full: anyio.Event | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        self._full = self._full or anyio.Event()
        self.clients.add(scope["client"])
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        if self.in_flight >= self.expected:
            self._full.set()
        await self._full.wait()
        self.in_flight -= 1
        headers = [(b"content-type", b"application/json"), (b"content-length", b"2")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"{}"})


@pytest.mark.anyio
async def test_every_connection_is_used_and_no_more_are_opened() -> None:
    """30 requests, 10 at most in flight: all 10 are at once, on 10 sockets kept alive."""
    app = HoldUntilFull(expected=10)
    with serve_in_thread(app) as url:
        pool = aiohttp_pool(url, concurrency=10)
        try:
            with anyio.fail_after(20):
                async with anyio.create_task_group() as group:
                    for _ in range(30):
                        group.start_soon(send, pool, "GET", "/")
        finally:
            await pool.aclose()
    assert app.peak == 10
    assert len(app.clients) == 10


@pytest.mark.anyio
async def test_default_headers_and_the_answer_come_through() -> None:
    seen: list[dict[bytes, bytes]] = []

    async def echo(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        seen.append(dict(scope["headers"]))
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = [(b"content-type", b"application/json"), (b"x-seen", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 201, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    with serve_in_thread(echo) as url:
        pool = aiohttp_pool(url, concurrency=2, headers={"User-Agent": "provisioner-test"})
        try:
            response = await send(pool, "POST", "/x?y=1", json={"a": [1, "é"]})
        finally:
            await pool.aclose()
    assert response.status_code == 201
    assert response.json() == {"a": [1, "é"]}
    assert response.headers["x-seen"] == str(len(response.content))
    assert seen[0][b"user-agent"] == b"provisioner-test"
    assert seen[0][b"content-type"] == b"application/json"


@pytest.mark.anyio
@pytest.mark.parametrize("scheme", ["http://", ""])  # without one, it is an HTTP proxy
async def test_a_proxy_from_the_environment_is_used(
    monkeypatch: pytest.MonkeyPatch, scheme: str
) -> None:
    """The API's URL goes through HTTP_PROXY (our transport reads it; httpx would not)."""
    targets: list[str] = []

    async def proxy(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        targets.append(scope["path"])  # a forward proxy gets the absolute URL
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    with serve_in_thread(proxy) as proxy_url:
        monkeypatch.setenv("HTTP_PROXY", proxy_url.replace("http://", scheme))
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        pool = aiohttp_pool("http://api.example.invalid", concurrency=2)
        try:
            response = await send(pool, "GET", "/auth/roles")
        finally:
            await pool.aclose()
    assert response.status_code == 200
    assert targets == ["http://api.example.invalid/auth/roles"]


@pytest.mark.anyio
@pytest.mark.parametrize("with_port", [False, True])
async def test_no_proxy_sends_directly(monkeypatch: pytest.MonkeyPatch, with_port: bool) -> None:
    app = HoldUntilFull(expected=1)
    with serve_in_thread(app) as url:
        monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
        monkeypatch.setenv("NO_PROXY", url.removeprefix("http://") if with_port else "127.0.0.1")
        pool = aiohttp_pool(url, concurrency=1)
        try:
            response = await send(pool, "GET", "/")
        finally:
            await pool.aclose()
    assert response.status_code == 200


@pytest.mark.parametrize("variable", ["ALL_PROXY", "HTTPS_PROXY"])
def test_a_socks_proxy_is_refused_up_front_without_its_password(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv(variable, "socks5://user:s0cks-pw@127.0.0.1:1080")
    with pytest.raises(UsageError, match="socks5:// proxy, which is not supported") as caught:
        aiohttp_pool("https://api.example.invalid", concurrency=1)
    assert "s0cks-pw" not in str(caught.value)
