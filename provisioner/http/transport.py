"""An httpx transport that sends requests over aiohttp's connection pool.

The client keeps httpx's API (requests, responses, errors, proxies from the environment), but
httpcore spends about a millisecond of CPU per call (its pool scans every connection, and each
scan asks the socket for its attributes), while aiohttp's C parser and pool cost a fraction of
it. At thousands of credentials that difference decides whether a run waits on the API or on us.

aiohttp's errors are mapped onto httpx's with one rule that matters for safety: only an error
before the request left (no connection yet) becomes ConnectError/ConnectTimeout. Anything later
may have reached the server, so a create is never retried blindly because of a mislabelled error.

This transport is hand-written for that rule. The public `httpx-aiohttp` package maps a server
that hangs up after the request was sent to `ConnectTimeout` ("never sent"), which would let a
create whose answer was lost be retried blindly and leave a duplicate whose secret nobody holds.

Every HTTP client of the process (the API client, the Vault sink) sends through this transport
(`open_transport` makes one), so proxies, TLS and the "was it sent?" rule behave the same.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import aiohttp
import httpx
from yarl import URL

from provisioner.errors import UsageError

#: Seconds an idle connection is kept (httpx's default too).
KEEPALIVE = 5.0
#: The largest answer read when a request names no cap (its `max_answer_bytes` extension): ample
#: for one object, and it stops an endless answer long before it exhausts a 128 MiB pod.
MAX_ANSWER_BYTES = 4 * 1024 * 1024
_CHUNK = 64 * 1024


class AnswerTooLarge(httpx.TransportError):
    """The answer was longer than the request's cap; it was not read to its end."""


class AiohttpTransport(httpx.AsyncBaseTransport):
    """Up to `connections` keep-alive HTTP/1.1 connections.

    HTTPS is verified with the context `ssl_context()` returns, asked for on the first HTTPS
    request: loading CA certificates takes tens of milliseconds that plain HTTP never needs.
    Proxies come from the environment as httpx reads them (`HTTP_PROXY`, `HTTPS_PROXY`,
    `ALL_PROXY`, `NO_PROXY`, through urllib), which httpx itself skips for a transport given
    to it.
    """

    def __init__(
        self,
        *,
        connections: int,
        ssl_context: Callable[[], ssl.SSLContext] = httpx.create_ssl_context,
    ) -> None:
        self._connections = connections
        self._make_ssl_context = ssl_context
        self._ssl_context: ssl.SSLContext | None = None
        self._session: aiohttp.ClientSession | None = None
        self._proxies = environment_proxies()  # read once, as httpx does
        self._proxy_of: dict[tuple[str, str, int | None], str | None] = {}

    def _open(self) -> aiohttp.ClientSession:
        # Made on first use: aiohttp binds a session to the running event loop.
        connector = aiohttp.TCPConnector(
            limit=self._connections, limit_per_host=0, keepalive_timeout=KEEPALIVE
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),  # cookies are left to httpx (the pool keeps none)
            auto_decompress=False,  # httpx decodes the body
            trust_env=False,  # no ~/.netrc logins; proxies are chosen in `_proxy`
        )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._session or self._open()
        timeout = request.extensions.get("timeout", {})
        cap: int = request.extensions.get("max_answer_bytes", MAX_ANSWER_BYTES)
        body = await request.aread()
        with _mapped_errors():
            async with session.request(
                request.method,
                URL(str(request.url), encoded=True),  # httpx has already encoded it
                headers=request.headers.multi_items(),
                data=body or None,
                allow_redirects=False,
                compress=False,
                ssl=self._verified() if request.url.scheme == "https" else True,
                proxy=self._proxy(request.url),
                timeout=aiohttp.ClientTimeout(
                    # The whole exchange, body included: a per-read timeout restarts with every
                    # byte, so a server dripping its answer would hold the run forever.
                    total=_deadline(timeout),
                    connect=timeout.get("pool"),
                    sock_connect=timeout.get("connect"),
                    sock_read=timeout.get("read"),
                ),
            ) as answer:
                content = await read_capped(answer, cap)
        extensions = {"http_version": b"HTTP/1.1"}
        if answer.reason:
            extensions["reason_phrase"] = answer.reason.encode()
        return httpx.Response(
            answer.status,
            headers=answer.raw_headers,
            content=content,
            request=request,
            extensions=extensions,
        )

    def _proxy(self, url: httpx.URL) -> str | None:
        """The proxy for `url`'s scheme and host, if the environment names one."""
        key = (url.scheme, url.host, url.port)
        if key not in self._proxy_of:
            proxy = self._proxies.get(url.scheme) or self._proxies.get("all")
            # NO_PROXY entries may name a port; urllib matches the host with or without it.
            where = url.host if url.port is None else f"{url.host}:{url.port}"
            bypass = proxy is not None and bool(urllib.request.proxy_bypass(where))
            self._proxy_of[key] = None if bypass else proxy
        return self._proxy_of[key]

    def _verified(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = self._make_ssl_context()
        return self._ssl_context

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def open_transport(*, connections: int, verify: ssl.SSLContext | bool = True) -> AiohttpTransport:
    """The transport for one HTTP client: `verify` as httpx takes it (a context, or a flag)."""
    if isinstance(verify, ssl.SSLContext):
        context = verify
        return AiohttpTransport(connections=connections, ssl_context=lambda: context)
    if not verify:
        return AiohttpTransport(connections=connections, ssl_context=_unverified)
    return AiohttpTransport(connections=connections)


def _unverified() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


async def read_capped(answer: aiohttp.ClientResponse, cap: int) -> bytes:
    """The body, read in chunks; AnswerTooLarge as soon as it is longer than `cap` bytes."""
    if answer.content_length is not None and answer.content_length > cap:
        raise AnswerTooLarge(_too_large(cap))
    chunks: list[bytes] = []
    size = 0
    async for chunk in answer.content.iter_chunked(_CHUNK):
        size += len(chunk)
        if size > cap:
            raise AnswerTooLarge(_too_large(cap))
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(cap: int) -> str:
    return f"answer larger than {cap / (1024 * 1024):g} MiB (not read further)"


def _deadline(timeout: dict[str, float | None]) -> float | None:
    """Seconds for a whole request, answer included: the longest of httpx's timeouts.

    The client is given one number (PROVISIONER_TIMEOUT), which httpx copies into each phase.
    """
    phases = [value for value in timeout.values() if value is not None]
    return max(phases) if phases else None


def describe_failure(exc: httpx.TransportError) -> str:
    """Why a request got no answer, in words a user can act on (never the proxy's login)."""
    if isinstance(exc, httpx.TimeoutException):
        return f"{type(exc).__name__}: no complete answer in time (PROVISIONER_TIMEOUT)"
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return f"TLS: the server's certificate cannot be verified ({seen.verify_message})"
        if isinstance(seen, ssl.SSLError):
            return "TLS handshake failed (is it an https:// URL for a plain-HTTP server?)"
        if isinstance(seen, ConnectionRefusedError):
            return "connection refused (nothing listens there)"
        if isinstance(seen, socket.gaierror):
            return "host name not found (DNS)"
        seen = seen.__cause__ or seen.__context__
    return type(exc).__name__


def environment_proxies() -> dict[str, str]:
    """Proxy URLs by scheme (`http`, `https`, `all`) from the environment, as httpx reads them.

    A proxy without a scheme is an HTTP proxy. Only HTTP(S) proxies are supported: anything else
    (SOCKS) is refused here rather than spoken to in HTTP, credentials and all.
    """
    proxies: dict[str, str] = {}
    for scheme, url in urllib.request.getproxies().items():
        if scheme not in ("http", "https", "all") or not url:
            continue
        url = url if "://" in url else f"http://{url}"
        proxy_scheme = url.partition("://")[0].lower()
        if proxy_scheme not in ("http", "https"):
            raise UsageError(
                f"the proxy for {scheme} requests is a {proxy_scheme}:// proxy, which is not "
                "supported: use an http:// or https:// proxy (HTTPS_PROXY, HTTP_PROXY, ALL_PROXY)"
            )
        proxies[scheme] = url
    return proxies


#: Most specific first: the first match names the httpx error.
_ERRORS: tuple[tuple[type[BaseException], type[httpx.TransportError]], ...] = (
    (aiohttp.ClientConnectorError, httpx.ConnectError),  # DNS, refused, TLS: nothing sent
    (aiohttp.ConnectionTimeoutError, httpx.ConnectTimeout),  # no connection in time
    (aiohttp.NonHttpUrlClientError, httpx.UnsupportedProtocol),
    (aiohttp.InvalidURL, httpx.UnsupportedProtocol),
    (aiohttp.SocketTimeoutError, httpx.ReadTimeout),
    (aiohttp.ServerTimeoutError, httpx.ReadTimeout),
    (asyncio.TimeoutError, httpx.ReadTimeout),
    (aiohttp.ServerDisconnectedError, httpx.RemoteProtocolError),
    (aiohttp.ClientPayloadError, httpx.ReadError),
    (aiohttp.ClientError, httpx.ReadError),  # a reset or other failure after sending
)


@contextmanager
def _mapped_errors() -> Iterator[None]:
    try:
        yield
    except httpx.TransportError:
        raise
    except aiohttp.ClientResponseError as exc:
        # Its text holds the URL, which for a proxy may carry the proxy's password: left out.
        proxy = isinstance(exc, aiohttp.ClientHttpProxyError)  # refused the tunnel: nothing sent
        error = httpx.ProxyError if proxy else httpx.RemoteProtocolError  # e.g. a bad answer
        raise error(f"HTTP {exc.status}: {exc.message}") from None
    except Exception as exc:
        for source, target in _ERRORS:
            if isinstance(exc, source):
                # Not chained: aiohttp's error carries the connection key, with any proxy login.
                raise target(str(exc) or type(exc).__name__) from None
        raise
