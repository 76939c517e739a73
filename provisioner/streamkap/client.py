"""The Streamkap API client: the only module that knows its URLs and JSON shapes."""

from __future__ import annotations

import functools
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any

import anyio
import httpx
import structlog
from pydantic import SecretStr

from provisioner.errors import (
    AmbiguousCreate,
    ApiError,
    AuthError,
    RateLimited,
    RequestFailed,
)
from provisioner.http.retry import Sleep, is_transient, parse_retry_after, retrying
from provisioner.http.transport import AiohttpTransport, AnswerTooLarge
from provisioner.logs import register_secret
from provisioner.reconcile.model import CreatedCredential, DesiredCredential, RemoteCredential, Role
from provisioner.streamkap.auth import TokenSource
from provisioner.streamkap.breaker import CircuitBreaker
from provisioner.streamkap.pacing import Pacer
from provisioner.streamkap.pool import Pool

CREDENTIALS = "/auth/client-credentials"
TOKEN_PATHS = "/auth/access-token"  # and its /refresh
# Statuses after which a create may have been committed: retrying blindly could duplicate it.
AMBIGUOUS_STATUSES = frozenset({408, 500, 502, 503, 504})
# httpx errors raised before the request could reach the API (a proxy refusing the tunnel among
# them): always safe to repeat.
_NOT_SENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.ProxyError,
    httpx.UnsupportedProtocol,
)

#: The largest listing of credentials read: at ~280 bytes per credential, some 115,000 of them,
#: beyond the 100,000 the project benchmarks. Parsing costs ~2.5x its size on top of the buffer
#: (docs/limits.md); past the cap the call fails cleanly instead of running out of memory.
LISTING_MAX_BYTES = 32 * 1024 * 1024
#: Any other answer (one object, the roles, a token) stops at the transport's default cap.

HEADERS = {"User-Agent": "streamkap-provisioner", "Accept": "application/json"}

log = structlog.get_logger("provisioner.streamkap.client")


class StreamkapClient:
    """Async client for the calls the provisioner makes; retries transient failures."""

    def __init__(
        self,
        base_url: str,
        *,
        client_id: str | None = None,
        secret: SecretStr | None = None,
        access_token: SecretStr | None = None,
        concurrency: int = 16,
        max_attempts: int = 6,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = anyio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # Known before anything is sent: an answer may echo them (a login body, a header).
        register_secret(secret)
        register_secret(access_token)
        # One set of CA certificates for both clients, loaded only if the API is on HTTPS.
        ssl_context = functools.cache(httpx.create_ssl_context)
        pooled = transport or AiohttpTransport(connections=concurrency, ssl_context=ssl_context)
        self._http = Pool(
            base_url.rstrip("/"),
            concurrency=concurrency,
            timeout=timeout,
            transport=pooled,
            headers=HEADERS,
        )
        # Token calls have a client of their own: a refresh must never wait for a connection
        # that a call waiting for the refreshed token holds. (One at a time: see TokenSource.)
        self._auth_http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            timeout=timeout,
            transport=transport or AiohttpTransport(connections=1, ssl_context=ssl_context),
            headers=HEADERS,
        )
        self.breaker = CircuitBreaker()
        self._max_attempts = max_attempts
        self._sleep = sleep
        self._clock = clock
        # Learns the API's rate limit from 429s and paces every call just below it.
        self.pacer = Pacer(clock=clock, sleep=sleep)
        self.tokens = TokenSource(
            self._token_call,
            client_id=client_id,
            secret=secret,
            access_token=access_token,
            clock=clock,
        )
        self.statuses: Counter[int] = Counter()

    async def __aenter__(self) -> StreamkapClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()
        await self._auth_http.aclose()

    # --- calls -------------------------------------------------------------------------------

    async def list_roles(self) -> list[Role]:
        body = await self._retrying("GET", "/auth/roles")
        return [Role(str(r["id"]), str(r.get("key", "")), str(r.get("name", ""))) for r in body]

    async def list_credentials(self) -> list[RemoteCredential]:
        body = await self._retrying("GET", CREDENTIALS, max_bytes=LISTING_MAX_BYTES)
        return parse_listing(body)

    async def create_credential(self, desired: DesiredCredential) -> CreatedCredential:
        """Create once; an unknown outcome raises AmbiguousCreate instead of retrying blindly."""
        payload = create_body(desired)
        retry = retrying(self._max_attempts, self._sleep, "create", key=desired.key)
        async for attempt in retry:
            with attempt:
                body = await self._create_once(payload, desired.key)
        secret = SecretStr(str(body.pop("secret", "")))
        register_secret(secret)  # a sink's error may echo the record it was sent
        return CreatedCredential(remote=parse_credential(body), secret=secret)

    async def delete_credential(self, client_id: str) -> None:
        """Delete; a credential already gone counts as deleted."""
        try:
            await self._retrying("DELETE", f"{CREDENTIALS}/{client_id}")
        except ApiError as exc:
            if exc.status != 404:
                raise

    async def verify_secret(self, client_id: str, secret: SecretStr) -> bool:
        """Whether the API accepts this credential's secret: one login with it.

        Sent on the token client, so the provisioner's own token is neither used nor disturbed.
        """
        register_secret(secret)
        body = {"client_id": client_id, "secret": secret.get_secret_value()}
        try:
            answer = await self._token_call(TOKEN_PATHS, body)
        except AuthError:
            return False
        except ApiError as exc:
            if exc.status in {400, 404, 422}:
                return False
            raise
        register_secret(str(answer.get("accessToken") or "") or None)
        return True

    # --- plumbing ----------------------------------------------------------------------------

    async def _create_once(self, payload: dict[str, Any], key: str) -> dict[str, Any]:
        try:
            body: dict[str, Any] = await self._request("POST", CREDENTIALS, payload)
        except RequestFailed as exc:
            if exc.sent:
                raise AmbiguousCreate(key, exc) from None
            raise
        except ApiError as exc:
            if exc.status in AMBIGUOUS_STATUSES:
                raise AmbiguousCreate(key, exc) from None
            raise
        return body

    async def _retrying(
        self, method: str, path: str, payload: Any = None, *, max_bytes: int | None = None
    ) -> Any:
        async for attempt in retrying(self._max_attempts, self._sleep, f"{method} {path}"):
            with attempt:
                return await self._request(method, path, payload, max_bytes=max_bytes)
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover

    async def _request(
        self, method: str, path: str, payload: Any = None, *, max_bytes: int | None = None
    ) -> Any:
        """One authorized call, through the circuit breaker: once open, calls fail fast."""
        self.breaker.check()
        try:
            answer = await self._authorized(method, path, payload, max_bytes)
        except (ApiError, RequestFailed) as exc:
            if is_transient(exc):
                self.breaker.failed(exc)
            raise
        self.breaker.succeeded()
        return answer

    async def _authorized(self, method: str, path: str, payload: Any, max_bytes: int | None) -> Any:
        """A 401 has renewed the token (see `_send`): repeat the call once."""
        try:
            return await self._send(method, path, payload, max_bytes)
        except AuthError as exc:
            if exc.status != 401 or exc.path.startswith(TOKEN_PATHS):
                raise  # a refused login is not an expired token: asking again cannot help
        return await self._send(method, path, payload, max_bytes)

    async def _send(self, method: str, path: str, payload: Any, max_bytes: int | None) -> Any:
        extensions = {} if max_bytes is None else {"max_answer_bytes": max_bytes}
        try:
            async with self._http.connection() as http:
                # Paced once a connection is held, so the pace in force is the one it goes at.
                ticket = await self.pacer.acquire()
                # The token is taken last: one fetched before the wait could expire during it.
                token = await self.tokens.get()
                headers = {"Authorization": f"Bearer {token.get_secret_value()}"}
                response = await http.request(
                    method, path, json=payload, headers=headers, extensions=extensions
                )
        except AnswerTooLarge as exc:  # the same answer again would be just as large
            raise RequestFailed(method, path, str(exc), sent=True, retryable=False) from None
        except httpx.TransportError as exc:
            sent = not isinstance(exc, _NOT_SENT)
            raise RequestFailed(method, path, type(exc).__name__, sent=sent) from None
        self.pacer.record(ticket, rejected=response.status_code == 429, now=self._clock())
        self.statuses[response.status_code] += 1
        if response.is_success:
            return json_body(response)
        if response.status_code == 401:
            await self.tokens.invalidate(token)  # one renewal, shared by every refused call
        raise _api_error(method, path, response)

    async def _token_call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        async for attempt in retrying(self._max_attempts, self._sleep, f"POST {path}"):
            with attempt:
                try:
                    response = await self._auth_http.post(path, json=body)
                except AnswerTooLarge as exc:
                    cause = str(exc)
                    raise RequestFailed("POST", path, cause, sent=True, retryable=False) from None
                except httpx.TransportError as exc:
                    sent = not isinstance(exc, _NOT_SENT)
                    raise RequestFailed("POST", path, type(exc).__name__, sent=sent) from None
                self.statuses[response.status_code] += 1
                if not response.is_success:
                    # Never echo a token call's raw body: a proxy may reflect the credential.
                    raise _api_error("POST", path, response, echo_body=False)
                answer: dict[str, Any] = response.json()
                return answer
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover


def _api_error(
    method: str, path: str, response: httpx.Response, *, echo_body: bool = True
) -> ApiError:
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = (response.text[:200] if echo_body else "") or response.reason_phrase
    status = response.status_code
    if status == 429:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return RateLimited(method, path, status, detail, retry_after)
    if status in {401, 403}:
        return AuthError(method, path, status, detail)
    return ApiError(method, path, status, detail)


def json_body(response: httpx.Response) -> Any:
    """A successful answer's JSON (`{}` when empty); a listing may hold thousands of objects."""
    return response.json() if response.content else {}


def parse_listing(body: list[dict[str, Any]]) -> list[RemoteCredential]:
    """Every credential of a `GET /auth/client-credentials` answer."""
    return [parse_credential(item) for item in body]


def create_body(desired: DesiredCredential) -> dict[str, Any]:
    """The `ClientCredentialCreateReq` for a credential: empty lists are omitted, never sent."""
    body: dict[str, Any] = {"description": desired.remote_description}
    if desired.service_id is not None:
        body["service_id"] = desired.service_id
    if desired.role_ids:
        body["role_ids"] = list(desired.role_ids)
    if desired.permission_ids:
        body["permission_ids"] = list(desired.permission_ids)
    return body


def parse_credential(item: dict[str, Any]) -> RemoteCredential:
    """A listed or created `ClientCredential` (its secret, if any, is not kept here)."""
    permissions = item.get("permission_ids")
    return RemoteCredential(
        client_id=str(item["client_id"]),
        description=item.get("description"),
        role_ids=frozenset(str(role["id"]) for role in item.get("roles") or ()),
        service_id=item.get("service_id"),
        created_at=_parse_time(item.get("created_at")),
        permission_ids=frozenset(map(str, permissions)) if permissions is not None else None,
    )


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
