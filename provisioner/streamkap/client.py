"""The Streamkap API client: the calls the provisioner makes, and the rules that keep them safe.

With `answers` (the JSON shapes) this package is the only code that knows the API; every call
goes through `requests.Requests`, the one request path.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import httpx
import structlog
from pydantic import SecretStr

from provisioner.errors import (
    AmbiguousCreate,
    ApiError,
    AuthError,
    PatchUnsupported,
    RequestFailed,
    UnusableAnswer,
    UnusableCreate,
)
from provisioner.http.retry import Sleep, retrying
from provisioner.logs import register_secret
from provisioner.model import CreatedCredential, DesiredCredential, RemoteCredential, Role
from provisioner.runtime import Halt
from provisioner.streamkap import answers
from provisioner.streamkap.requests import CREDENTIALS, ROLES, TOKEN_PATHS, Requests

# Statuses after which a create may have been committed: retrying blindly could duplicate it.
AMBIGUOUS_STATUSES = frozenset({408, 500, 502, 503, 504})
# Statuses of an API without PATCH on client credentials (the older API and UI docs).
NO_PATCH_STATUSES = frozenset({404, 405, 501})

#: The largest listing of credentials read: at ~280 bytes per credential, some 115,000 of them,
#: beyond the 100,000 the project benchmarks. Parsing costs ~2.5x its size on top of the buffer
#: (docs/limits.md); past the cap the call fails cleanly instead of running out of memory.
LISTING_MAX_BYTES = 32 * 1024 * 1024
#: Any other answer (one object, the roles, a token) stops at the transport's default cap.

T = TypeVar("T")

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
        halt: Halt | None = None,
    ) -> None:
        self._api = Requests(
            base_url,
            client_id=client_id,
            secret=secret,
            access_token=access_token,
            concurrency=concurrency,
            max_attempts=max_attempts,
            timeout=timeout,
            transport=transport,
            sleep=sleep,
            clock=clock,
            halt=halt,
        )
        # What the run's observers read: tokens and pace learnt, and the run's halt.
        self.halt = self._api.halt
        self.tokens, self.pacer, self.breaker = self._api.tokens, self._api.pacer, self._api.breaker
        #: Whether the API has PATCH: None until the run's first PATCH is answered. That first
        #: one is sent alone (the others wait for its answer), so an API without it sees one.
        self.patch_supported: bool | None = None
        self._patch_probe = anyio.Lock()

    async def __aenter__(self) -> StreamkapClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._api.aclose()

    # --- calls -------------------------------------------------------------------------------

    async def list_roles(self) -> list[Role]:
        return self._parsed("GET", ROLES, answers.parse_roles, await self._api.call("GET", ROLES))

    async def list_credentials(self) -> list[RemoteCredential]:
        """Every credential, each once; the listing never carries secrets."""
        body = await self._api.call("GET", CREDENTIALS, max_bytes=LISTING_MAX_BYTES)
        return self._parsed("GET", CREDENTIALS, answers.parse_listing, body)

    async def create_credential(self, desired: DesiredCredential) -> CreatedCredential:
        """Create once; an unknown outcome raises AmbiguousCreate instead of retrying blindly.

        An answer without a usable secret, or for a credential other than the one asked for,
        raises UnusableCreate: the caller deletes what it made and never delivers it.
        """
        payload = answers.create_body(desired)
        retry = retrying(self._api.max_attempts, self._api.sleep, "create", key=desired.key)
        async for attempt in retry:
            with attempt:
                body = await self._create_once(payload, desired.key)
        return _created(desired, body)

    async def update_credential(self, client_id: str, desired: DesiredCredential) -> None:
        """Change roles and description in place (client_id and secret kept).

        PatchUnsupported (and no further PATCH this run) when the API has no such call; an
        answer that does not carry what was asked is an UnusableAnswer.
        """
        if self.patch_supported is None:
            async with self._patch_probe:
                if self.patch_supported is None:
                    await self._update(client_id, desired)
                    return
        if not self.patch_supported:
            raise PatchUnsupported("PATCH", CREDENTIALS, 405, "not available (seen this run)")
        await self._update(client_id, desired)

    async def _update(self, client_id: str, desired: DesiredCredential) -> None:
        path = f"{CREDENTIALS}/{client_id}"
        try:
            body = await self._api.call("PATCH", path, answers.update_body(desired))
        except ApiError as exc:
            if exc.status not in NO_PATCH_STATUSES:
                raise
            self.patch_supported = False
            log.warning("update.unsupported", status=exc.status, detail="replacing instead")
            raise PatchUnsupported("PATCH", path, exc.status, exc.detail) from None
        self.patch_supported = True
        updated = self._parsed("PATCH", path, answers.parse_credential, _object(body))
        changed = answers.differences(desired, updated)
        if updated.client_id != client_id:
            changed.append(f"client_id {client_id} became {updated.client_id}")
        if changed:
            raise UnusableAnswer(
                "PATCH", path, "the API changed what was asked: " + "; ".join(changed)
            )

    async def delete_credential(self, client_id: str) -> None:
        """Delete; a credential already gone counts as deleted."""
        try:
            await self._api.call("DELETE", f"{CREDENTIALS}/{client_id}")
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
            answer = await self._api.token_call(TOKEN_PATHS, body)
        except AuthError:
            return False
        except ApiError as exc:
            if exc.status in {400, 404, 422}:
                return False
            raise
        register_secret(answer.access)
        return True

    # --- plumbing ----------------------------------------------------------------------------

    def _parsed(self, method: str, path: str, parse: Callable[[Any], T], body: Any) -> T:
        try:
            return parse(body)
        except answers.Malformed as exc:
            raise UnusableAnswer(method, path, str(exc)) from None

    async def _create_once(self, payload: dict[str, Any], key: str) -> Any:
        try:
            return await self._api.once("POST", CREDENTIALS, payload)
        except RequestFailed as exc:
            if exc.sent:
                raise AmbiguousCreate(key, exc) from None
            raise
        except UnusableAnswer as exc:  # not JSON: whether it made a credential is unknown
            raise AmbiguousCreate(key, exc) from None
        except ApiError as exc:
            if exc.status in AMBIGUOUS_STATUSES:
                raise AmbiguousCreate(key, exc) from None
            raise


def _created(desired: DesiredCredential, body: Any) -> CreatedCredential:
    """The checked answer of a create (see `create_credential`)."""
    client_id = answers.created_id(body)
    if client_id is None:  # which credential the create made, if any, is unknown
        raise AmbiguousCreate(desired.key, UnusableAnswer("POST", CREDENTIALS, "no client_id"))
    try:
        created = answers.parse_created(body)
    except answers.UnusableSecret as exc:
        raise UnusableCreate(desired.key, client_id, f"the answer carries {exc}") from None
    except answers.Malformed as exc:
        raise UnusableCreate(desired.key, client_id, f"the answer is malformed: {exc}") from None
    register_secret(created.secret)  # a sink's error may echo the record it was sent
    changed = answers.differences(desired, created.remote)
    if changed:
        problem = "the API changed what was asked: " + "; ".join(changed)
        raise UnusableCreate(desired.key, client_id, problem)
    return created


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise UnusableAnswer("PATCH", CREDENTIALS, "expected a JSON object")
    return body
