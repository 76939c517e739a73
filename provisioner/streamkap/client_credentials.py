"""Client credentials (`/auth/client-credentials`): the `CredentialApi` of the API's tokens.

What only this kind knows: its URLs and permissions, the no-duplicates rule for its creates, and
that PATCH (where the API has it) changes its roles in place.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import anyio
import structlog
from pydantic import SecretStr

from provisioner.errors import (
    AmbiguousCreate,
    ApiError,
    AuthError,
    PatchUnsupported,
    UnusableAnswer,
    UnusableCreate,
)
from provisioner.http.retry import retrying
from provisioner.logs import register_secret
from provisioner.model import CreatedCredential, DesiredCredential, RemoteCredential, SinkRecord
from provisioner.streamkap import answers
from provisioner.streamkap.requests import TOKEN_PATHS, Call, Requests

CREDENTIALS = "/auth/client-credentials"
#: The permissions its calls need (Streamkap's Terraform provider names WRITE, for creating;
#: READ and DELETE are assumed by analogy, and PATCH needs WRITE; see docs/api.md).
READ = "fe.secure.read.tenantApiTokens"
WRITE = "fe.secure.write.tenantApiTokens"
DELETE = "fe.secure.delete.tenantApiTokens"

# Statuses of an API without PATCH on client credentials (the older API and UI docs).
NO_PATCH_STATUSES = frozenset({404, 405, 501})

#: The largest listing of credentials read: at ~280 bytes per credential, some 115,000 of them,
#: beyond the 100,000 the project benchmarks. Parsing costs its size again (the decoded text,
#: parsed one item at a time) plus ~320 bytes per credential kept; past the cap the call fails
#: cleanly instead of running out of memory.
LISTING_MAX_BYTES = 32 * 1024 * 1024
#: Any other answer (one object, the roles, a token) stops at the transport's default cap.

log = structlog.get_logger("provisioner.streamkap.client_credentials")


class ClientCredentials:
    """Client credentials over one request path; implements `CredentialApi`."""

    def __init__(self, requests: Requests) -> None:
        self._requests = requests
        #: Whether the API has PATCH: None until the run's first PATCH is answered. That first
        #: one is sent alone (the others wait for its answer), so an API without it sees one.
        self.patch_supported: bool | None = None
        self._patch_probe = anyio.Lock()

    async def list(self) -> Sequence[RemoteCredential]:
        listing = Call(
            "GET",
            CREDENTIALS,
            needs=READ,
            max_bytes=LISTING_MAX_BYTES,
            decode=answers.decode_listing,
        )
        body = await self._requests.call(listing)
        return answers.parsed("GET", CREDENTIALS, answers.parse_listing, body)

    async def create(self, desired: DesiredCredential) -> CreatedCredential:
        """Create once; an unknown outcome raises AmbiguousCreate instead of retrying blindly.

        An answer without a usable secret, or for a credential other than the one asked for,
        raises UnusableCreate: the caller deletes what it made and never delivers it.
        """
        payload = answers.create_body(desired)
        call = Call("POST", CREDENTIALS, payload, needs=WRITE)
        return _created(desired, await self._requests.create(call, desired.key))

    async def update(self, client_id: str, desired: DesiredCredential) -> CreatedCredential | None:
        """Change roles in place (client_id, secret and description kept).

        PatchUnsupported (and no further PATCH this run) when the API has no such call; an
        answer that does not carry what was asked is an UnusableAnswer.
        """
        if self.patch_supported is None:
            async with self._patch_probe:
                if self.patch_supported is None:
                    await self._update(client_id, desired)
                    return None
        if not self.patch_supported:
            raise PatchUnsupported("PATCH", CREDENTIALS, 405, "not available (seen this run)")
        await self._update(client_id, desired)
        return None

    async def delete(self, client_id: str) -> None:
        try:
            await self._requests.call(Call("DELETE", f"{CREDENTIALS}/{client_id}", needs=DELETE))
        except ApiError as exc:
            if exc.status != 404:
                raise

    async def verify(self, record: SinkRecord) -> bool:
        """One login with the record's API access (see `login_works`)."""
        if record.client_id is None or record.secret is None:
            return False
        return await login_works(self._requests, record.client_id, record.secret)

    async def _update(self, client_id: str, desired: DesiredCredential) -> None:
        path = f"{CREDENTIALS}/{client_id}"
        try:
            body = await self._requests.call(
                Call("PATCH", path, answers.update_body(desired), needs=WRITE)
            )
        except ApiError as exc:
            if exc.status not in NO_PATCH_STATUSES:
                raise
            self.patch_supported = False
            log.warning("update.unsupported", status=exc.status, detail="replacing instead")
            raise PatchUnsupported("PATCH", path, exc.status, exc.detail) from None
        self.patch_supported = True
        updated = answers.parsed("PATCH", path, answers.parse_credential, _object(body))
        # The description was not sent (see answers.update_body): the marker stays as listed.
        changed = answers.differences(desired, updated, marker=False)
        if updated.client_id != client_id:
            changed.append(f"client_id {client_id} became {updated.client_id}")
        if changed:
            raise UnusableAnswer(
                "PATCH", path, "the API changed what was asked: " + "; ".join(changed)
            )


def _created(desired: DesiredCredential, body: Any) -> CreatedCredential:
    """The checked answer of a create (see `ClientCredentials.create`)."""
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


async def login_works(requests: Requests, client_id: str, secret: SecretStr) -> bool:
    """Whether the API accepts this client id and secret: one login on the token client (the
    provisioner's own token is not disturbed), retried like any call."""
    register_secret(secret)
    body = {"client_id": client_id, "secret": secret.get_secret_value()}
    # Retried like any call: one 500 must not turn a restore into a replace.
    retry = retrying(requests.config.max_attempts, requests.sleep, "verify", client=client_id)
    try:
        async for attempt in retry:
            with attempt:
                answer = await requests.token_call(TOKEN_PATHS, body)
    except AuthError:
        return False
    except ApiError as exc:
        if exc.status in {400, 404, 422}:
            return False
        raise
    register_secret(answer.access)
    return True
