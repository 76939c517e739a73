"""The one request path to the Streamkap API: every call goes through `Requests.call`.

retry (one budget per call) -> circuit breaker -> token (one renewal on a 401) -> a connection
slot -> pacing -> the shared transport. What it learns on the way (the API answered, a permission
was refused, the API is unreachable) holds for the rest of the run. It knows no endpoint but the
token calls: each call names the permission it needs, for a 403 that says what to fix.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
import httpx

from provisioner.errors import (
    AmbiguousCreate,
    ApiError,
    AuthError,
    PermissionDenied,
    RateLimited,
    RequestFailed,
    Stopped,
    UnusableAnswer,
    WrongHost,
)
from provisioner.http.retry import (
    Sleep,
    is_transient,
    parse_retry_after,
    retrying,
    stop_reason,
    stopping_sleep,
)
from provisioner.http.transport import AiohttpTransport, AnswerTooLarge, describe_failure
from provisioner.logs import register_secret
from provisioner.runtime import Halt, current_observer
from provisioner.streamkap import answers
from provisioner.streamkap.auth import TokenSource
from provisioner.streamkap.breaker import CircuitBreaker
from provisioner.streamkap.config import ApiConfig
from provisioner.streamkap.pacing import Pacer
from provisioner.streamkap.pool import Pool

TOKEN_PATHS = "/auth/access-token"  # and its /refresh
# httpx errors raised before the request could reach the API (a proxy refusing the tunnel among
# them): always safe to repeat.
_NOT_SENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.ProxyError,
    httpx.UnsupportedProtocol,
)
#: Statuses after which a create may have been committed: retrying it blindly could duplicate it.
AMBIGUOUS_STATUSES = frozenset({408, 500, 502, 503, 504})

HEADERS = {"User-Agent": "streamkap-provisioner", "Accept": "application/json"}


@dataclass(frozen=True, slots=True)
class Call:
    """One API call. `needs` is the permission it needs, if known: a 403 names it, and once
    refused, no call that needs it is sent again this run."""

    method: str
    path: str
    payload: Any = None
    needs: str | None = None
    max_bytes: int | None = None  # the largest answer read; None: the transport's default cap
    # How a successful answer's body becomes what `call` returns: JSON by default; ValueError
    # from it means "not JSON".
    decode: Callable[[bytes], Any] | None = None


class Requests:
    """Authorized, paced, retried requests to one API, and what a run learns about it."""

    def __init__(
        self,
        config: ApiConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = anyio.sleep,
        clock: Callable[[], float] = time.monotonic,
        halt: Halt | None = None,
    ) -> None:
        """Send through `transport` if given (tests, `--simulate`), else over aiohttp."""
        # Known before anything is sent: an answer may echo them (a login body, a header).
        register_secret(config.secret)
        register_secret(config.access_token)
        self.config = config
        self._base = config.base_url.rstrip("/")
        pooled, single = _transports(config.concurrency, transport)
        self._http = Pool(
            self._base,
            concurrency=config.concurrency,
            timeout=config.timeout,
            transport=pooled,
            headers=HEADERS,
        )
        # Token calls have a client of their own: a refresh must never wait for a connection
        # that a call waiting for the refreshed token holds. (One at a time: see TokenSource.)
        self._auth_http = httpx.AsyncClient(
            base_url=self._base, timeout=config.timeout, transport=single, headers=HEADERS
        )
        self.breaker = CircuitBreaker()
        #: The run's halt: set when the breaker opens, a permission is refused, or the API was
        #: never reached; the engine then starts no new action.
        self.halt = halt or Halt()
        #: The backoff between attempts: once the run halts it is cut short and raises Stopped,
        #: so no call (a create's own loop included) is tried again by a run that is stopping.
        self.sleep = stopping_sleep(sleep, self.halt)
        #: The run's monotonic clock (seconds): what waits measure themselves with.
        self.clock = clock
        # Learns the API's rate limit from 429s and paces every call just below it.
        self.pacer = Pacer(clock=clock, sleep=sleep)
        self.tokens = TokenSource(
            self.token_call,
            client_id=config.client_id,
            secret=config.secret,
            access_token=config.access_token,
            clock=clock,
        )
        # Until the API first answers, a failure to reach it is a configuration problem more
        # often than a blip: it is not retried, and its error says which variable to check.
        self._answered = False
        self._unreachable: RequestFailed | None = None  # how it first failed, if it never answered
        #: Permissions the API refused this run (403), each with the first refusal: a call that
        #: needs one is not sent again, it fails with that refusal.
        self._denied: dict[str, PermissionDenied] = {}

    async def aclose(self) -> None:
        await self._http.aclose()
        await self._auth_http.aclose()

    async def call(self, call: Call) -> Any:
        """One call, retried while its failure is transient (one budget, logins included)."""
        what = f"{call.method} {call.path}"
        retry = retrying(self.config.max_attempts, self.sleep, what, retry_if=self._worth_retrying)
        tries = 0
        try:
            async for attempt in retry:
                tries = attempt.retry_state.attempt_number
                with attempt:
                    return await self.once(call)
        except Stopped as exc:  # the halt cut a backoff short
            raise Stopped(f"{what}: {exc}") from None
        except (ApiError, RequestFailed) as exc:
            cut_short = tries < self.config.max_attempts and self._worth_retrying(exc)
            if cut_short and self.halt.is_set():  # it would have been retried, but for the halt
                raise Stopped(f"{exc}; not retried: {stop_reason(self.halt)}") from None
            raise
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover

    async def create(self, call: Call, key: str) -> Any:
        """A create of `key`, retried only while a failure surely made nothing; one whose
        outcome is unknown (sent, then no answer; an unreadable answer; 408 or 5xx) raises
        AmbiguousCreate for the caller's no-duplicates recovery: never retried blindly."""
        retry = retrying(self.config.max_attempts, self.sleep, "create", key=key)
        try:
            async for attempt in retry:
                with attempt:
                    return await self._create_once(call, key)
        except Stopped as exc:  # the halt cut a backoff short: say which call
            raise Stopped(f"{call.method} {call.path} ({key}): {exc}") from None
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover

    async def _create_once(self, call: Call, key: str) -> Any:
        try:
            return await self.once(call)
        except RequestFailed as exc:
            if exc.sent:
                raise AmbiguousCreate(key, exc) from None
            raise
        except UnusableAnswer as exc:  # not JSON: whether it made anything is unknown
            raise AmbiguousCreate(key, exc) from None
        except ApiError as exc:
            if exc.status in AMBIGUOUS_STATUSES:
                raise AmbiguousCreate(key, exc) from None
            raise

    def _worth_retrying(self, exc: BaseException) -> bool:
        # An API that never answered this run is unreachable, not briefly away: fail fast.
        return is_transient(exc) and (self._answered or not isinstance(exc, RequestFailed))

    async def once(self, call: Call) -> Any:
        """One attempt, through the circuit breaker (once open, calls fail fast); no retry."""
        self.breaker.check()
        try:
            answer = await self._authorized(call)
        except (ApiError, RequestFailed) as exc:
            if is_transient(exc):
                self.breaker.failed(exc)
                if self.breaker.is_open:
                    self.halt.set(f"not started: {self.breaker.opened}")
            raise
        self.breaker.succeeded()
        return answer

    async def _authorized(self, call: Call) -> Any:
        """A 401 has renewed the token (see `_send`): repeat the call once."""
        try:
            return await self._send(call)
        except AuthError as exc:
            if exc.status != 401 or exc.path.startswith(TOKEN_PATHS):
                raise  # a refused login is not an expired token: asking again cannot help
        return await self._send(call)

    async def _send(self, call: Call) -> Any:
        method, path, needs = call.method, call.path, call.needs
        if self._unreachable is not None and not self._answered:
            raise self._unreachable  # concurrent calls share one wait for an unreachable API
        extensions = {} if call.max_bytes is None else {"max_answer_bytes": call.max_bytes}
        try:
            async with self._http.connection() as http:
                # A call that waited for its connection while one like it was refused: unsent.
                self._refuse_if_denied(needs)
                # Paced once a connection is held, so the pace in force is the one it goes at.
                ticket = await self.pacer.acquire()
                # The token is taken last: one fetched before the wait could expire during it.
                token = await self.tokens.get()
                headers = {"Authorization": f"Bearer {token.get_secret_value()}"}
                response = await http.request(
                    method, path, json=call.payload, headers=headers, extensions=extensions
                )
                if response.status_code == 403:  # noted before the calls queued behind it go
                    self._note_denied(_api_error(method, path, response, needs=needs))
        except httpx.TransportError as exc:
            raise self._failed(method, path, exc) from None
        self._answered = True
        self.pacer.record(ticket, rejected=response.status_code == 429, now=self.clock())
        current_observer().on_status(response.status_code)
        if response.is_success:
            return self._json(method, path, response, call.decode)
        if response.status_code == 401:
            await self.tokens.invalidate(token)  # one renewal, shared by every refused call
        raise _api_error(method, path, response, needs=needs)

    def _note_denied(self, error: ApiError) -> None:
        if isinstance(error, PermissionDenied):
            self._denied.setdefault(error.needs, error)
            # Every other write would be refused too: start nothing more, and end the run.
            self.halt.set(f"not started: {error}", error)

    def _refuse_if_denied(self, needs: str | None) -> None:
        """The first refusal again, unsent, for a call whose permission was refused this run."""
        first = self._denied.get(needs) if needs is not None else None
        if first is not None:
            raise PermissionDenied(
                first.method, first.path, first.status, first.detail, first.needs
            )

    async def token_call(self, path: str, body: dict[str, Any]) -> answers.TokenAnswer:
        """One login or refresh; the call it serves retries it, so retries never multiply."""
        try:
            response = await self._auth_http.post(path, json=body)
        except httpx.TransportError as exc:
            raise self._failed("POST", path, exc) from None
        self._answered = True
        current_observer().on_status(response.status_code)
        if response.status_code in {404, 405} or _not_json(response):
            raise WrongHost(self._wrong_host(path, f"HTTP {response.status_code}"))
        if not response.is_success:
            # Never echo a token call's raw body: a proxy may reflect the credential.
            raise _api_error("POST", path, response, echo_body=False)
        try:
            return answers.parse_token(self._json("POST", path, response))
        except (answers.Malformed, UnusableAnswer) as exc:
            raise WrongHost(self._wrong_host(path, str(exc))) from None

    def _json(
        self,
        method: str,
        path: str,
        response: httpx.Response,
        decode: Callable[[bytes], Any] | None = None,
    ) -> Any:
        """A successful answer's JSON (`{}` when empty), or what `decode` makes of it."""
        try:
            if decode is not None:
                return decode(response.content)
            return response.json() if response.content else {}
        except ValueError:
            raise UnusableAnswer(method, path, "not JSON") from None

    def _failed(self, method: str, path: str, exc: httpx.TransportError) -> RequestFailed:
        """The error for a request that got no answer: which URL, why, and what to check."""
        if isinstance(exc, AnswerTooLarge):  # the same answer again would be just as large
            return RequestFailed(method, path, str(exc), sent=True, retryable=False)
        cause = describe_failure(exc)
        if not self._answered:
            cause += "; the API has not answered this run: check STREAMKAP_HOST"
        url = f"{self._base}{path}"
        failed = RequestFailed(method, url, cause, sent=not isinstance(exc, _NOT_SENT))
        if not self._answered and self._unreachable is None:
            self._unreachable = failed
            self.halt.set(f"not started: {failed}")
        return failed

    def _wrong_host(self, path: str, what: str) -> str:
        return (
            f"{self._base}{path} does not answer as Streamkap's API ({what}): "
            "check STREAMKAP_HOST (e.g. https://api.streamkap.com)"
        )


def _transports(
    connections: int, given: httpx.AsyncBaseTransport | None
) -> tuple[httpx.AsyncBaseTransport, httpx.AsyncBaseTransport]:
    """The pool's transport and the token client's (one connection): `given` for both, if any."""
    if given is not None:
        return given, given
    # One set of CA certificates for both, loaded only if the API is on HTTPS.
    ssl_context = functools.cache(httpx.create_ssl_context)
    return (
        AiohttpTransport(connections=connections, ssl_context=ssl_context),
        AiohttpTransport(connections=1, ssl_context=ssl_context),
    )


def _not_json(response: httpx.Response) -> bool:
    kind = response.headers.get("content-type", "")
    return bool(response.content) and "json" not in kind


def _api_error(
    method: str,
    path: str,
    response: httpx.Response,
    *,
    needs: str | None = None,
    echo_body: bool = True,
) -> ApiError:
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        # Whole: ApiError cuts it when shown, after redaction (see provisioner.logs.cut).
        detail = (response.text if echo_body else "") or response.reason_phrase
    status = response.status_code
    if status == 429:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return RateLimited(method, path, status, detail, retry_after)
    if status == 403 and needs is not None:
        return PermissionDenied(method, path, status, detail, needs)
    if status in {401, 403}:
        return AuthError(method, path, status, detail)
    return ApiError(method, path, status, detail)
