"""The simulator's in-memory world: roles, client credentials, tokens, faults and a call log.

Every public method takes the one lock, so tests may inspect or change the state from another
thread while uvicorn serves it; no method holds the lock across an `await`.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

from provisioner.simulator.faults import (
    AfterCreate,
    Call,
    FaultConfig,
    Refusal,
    ServiceState,
)

CREDENTIALS_PATH = "/auth/client-credentials"
#: Status recorded in the call log for a call whose connection was dropped without an answer.
NO_RESPONSE = 0
_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
#: The simulator's one built-in login (besides the credentials it creates).
ADMIN_CLIENT_ID = "sim-admin"
ADMIN_SECRET = "sim-admin-secret"

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class Role:
    """A Streamkap role; the create call refers to it by `id`, people by `key` or `name`."""

    id: str
    key: str
    name: str
    description: str | None = None
    permissions: tuple[str, ...] = ()
    created_at: datetime = _EPOCH
    updated_at: datetime = _EPOCH


DEFAULT_ROLES: tuple[Role, ...] = (
    Role("role-admin", "admin", "Admin", "Full access", ("read", "write", "admin")),
    Role("role-read-only", "read_only", "Read Only", "Read access", ("read",)),
    Role("role-editor", "editor", "Editor", "Read and write access", ("read", "write")),
)

DEFAULT_USER: Mapping[str, Any] = MappingProxyType(
    {
        "id": "user-sim-admin",
        "email": "admin@simulator.invalid",
        "name": "Simulator Admin",
        "profile_picture_url": None,
        "phone_number": None,
        "tenant_id": "tenant-sim",
        "created_at": _EPOCH.isoformat(),
        "last_login": None,
    }
)


@dataclass(frozen=True)
class CredentialRecord:
    """One live client credential, secret included (the API shows it only once)."""

    client_id: str
    secret: str
    description: str | None
    service_id: str | None
    role_ids: tuple[str, ...]
    permission_ids: tuple[str, ...]
    created_at: datetime


@dataclass(frozen=True)
class _Token:
    principal: str
    expires_at: datetime


class ManualClock:
    """A clock tests move by hand; pass it as `SimulatorState(now=clock)`."""

    def __init__(self, start: datetime = _EPOCH) -> None:
        self._now = start

    def __call__(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta | float) -> None:
        """Move the clock forward by a timedelta or a number of seconds."""
        self._now += delta if isinstance(delta, timedelta) else timedelta(seconds=delta)


def _same(given: str, expected: str) -> bool:
    # Constant-time, and safe for non-ASCII input (compare_digest rejects non-ASCII str).
    return secrets.compare_digest(given.encode(), expected.encode())


def _utcnow() -> datetime:
    return datetime.now(UTC)


class SimulatorState(ServiceState):
    """The simulated Streamkap account; `create_app` serves it."""

    def __init__(
        self,
        *,
        roles: Iterable[Role] = DEFAULT_ROLES,
        permissions: Iterable[str] | None = None,
        admin_client_id: str = ADMIN_CLIENT_ID,
        admin_secret: str = ADMIN_SECRET,
        faults: FaultConfig | None = None,
        now: Clock = _utcnow,
        user: Mapping[str, Any] = DEFAULT_USER,
    ) -> None:
        super().__init__(now, faults)
        self.admin_client_id = admin_client_id
        self._admin_secret = admin_secret
        self.user: Mapping[str, Any] = MappingProxyType(dict(user))
        self.roles: Mapping[str, Role] = MappingProxyType({role.id: role for role in roles})
        # Permission ids the account knows; None accepts any (the API's list is not public).
        self.permissions = frozenset(permissions) if permissions is not None else None
        self._credentials: dict[str, CredentialRecord] = {}
        self._tokens: dict[str, _Token] = {}
        self._refresh_tokens: dict[str, str] = {}
        self._issued: list[str] = []  # every secret ever handed out, deleted ones included

    # Faults ------------------------------------------------------------------------------------

    def refusal(self, *, token_call: bool) -> Refusal | None:
        """The fault answer this call gets instead of being done, if any."""
        now = self.now()
        with self._lock:
            return self._decider.before_call(now, token_call=token_call)

    def after_create(self) -> AfterCreate:
        """How a committed create answers: None (normally), "drop" or "error"."""
        with self._lock:
            return self._decider.after_create()

    # Tokens ------------------------------------------------------------------------------------

    def login(self, client_id: str, secret: str) -> dict[str, Any] | None:
        """A token answer for the admin login or any live credential; None if they do not match."""
        with self._lock:
            record = self._credentials.get(client_id)
        valid = (client_id == self.admin_client_id and _same(secret, self._admin_secret)) or (
            record is not None and _same(secret, record.secret)
        )
        return self.issue_token(client_id) if valid else None

    def refresh(self, refresh_token: str) -> dict[str, Any] | None:
        """A new token answer for a known refresh token; None if unknown."""
        with self._lock:
            principal = self._refresh_tokens.get(refresh_token)
        return None if principal is None else self.issue_token(principal)

    def issue_token(self, principal: str | None = None) -> dict[str, Any]:
        """Issue an access and refresh token (default: for the admin) and return the API answer."""
        ttl = self.faults.token_ttl
        expires_at = self.now() + timedelta(seconds=ttl)
        access, refresh = f"sat_{secrets.token_urlsafe(24)}", f"srt_{secrets.token_urlsafe(24)}"
        owner = principal or self.admin_client_id
        with self._lock:
            self._tokens[access] = _Token(owner, expires_at)
            self._refresh_tokens[refresh] = owner
        return {
            "accessToken": access,
            "expires": expires_at.isoformat(),
            "expiresIn": ttl,
            "refreshToken": refresh,
        }

    def authenticate(self, access_token: str) -> bool:
        """Whether an access token is known and not expired (expired ones are forgotten)."""
        now = self.now()
        with self._lock:
            token = self._tokens.get(access_token)
            if token is not None and token.expires_at <= now:
                del self._tokens[access_token]
                token = None
        return token is not None

    # Credentials -------------------------------------------------------------------------------

    def add_credential(
        self,
        *,
        description: str | None = None,
        role_ids: Iterable[str] = (),
        service_id: str | None = None,
        permission_ids: Iterable[str] = (),
        created_at: datetime | None = None,
    ) -> CredentialRecord:
        """Create a credential directly (as the create call does); unknown role ids: ValueError."""
        roles = tuple(role_ids)
        unknown = [role for role in roles if role not in self.roles]
        if unknown:
            raise ValueError(f"unknown role ids: {unknown}")
        record = CredentialRecord(
            client_id=f"cc_{secrets.token_hex(12)}",
            secret=secrets.token_urlsafe(32),
            description=description,
            service_id=service_id,
            role_ids=roles,
            permission_ids=tuple(permission_ids),
            created_at=created_at or self.now(),
        )
        with self._lock:
            self._credentials[record.client_id] = record
            self._issued.append(record.secret)
        return record

    def delete_credential(self, client_id: str) -> bool:
        """Delete a credential; False if there was none with this id."""
        with self._lock:
            return self._credentials.pop(client_id, None) is not None

    def get(self, client_id: str) -> CredentialRecord | None:
        """The live credential with this id, if any."""
        with self._lock:
            return self._credentials.get(client_id)

    def live(self) -> list[CredentialRecord]:
        """Every live credential, oldest creation call first."""
        with self._lock:
            return list(self._credentials.values())

    def issued_secrets(self) -> list[str]:
        """Every secret this account ever created, for tests that prove none leaked."""
        with self._lock:
            return list(self._issued)

    def secret_of(self, client_id: str) -> str:
        """The real secret of a live credential (KeyError if unknown)."""
        with self._lock:
            return self._credentials[client_id].secret

    def restore(self, records: Iterable[CredentialRecord]) -> None:
        """Put back credentials an earlier process saved (`--simulate` runs that follow on)."""
        with self._lock:
            for record in records:
                self._credentials[record.client_id] = record
                self._issued.append(record.secret)

    def age(self, client_id: str | None, by: timedelta) -> None:
        """Make one credential (or every one, for None or "all") older by `by`."""
        with self._lock:
            targets = [client_id] if client_id not in (None, "all") else list(self._credentials)
            for target in targets:
                record = self._credentials[str(target)]
                self._credentials[record.client_id] = replace(
                    record, created_at=record.created_at - by
                )

    # Call log ----------------------------------------------------------------------------------

    def write_calls(self) -> list[Call]:
        """The POST and DELETE calls to the client-credentials endpoints, whatever their answer."""
        return [
            call
            for call in self.calls(path_prefix=CREDENTIALS_PATH)
            if call.method in ("POST", "DELETE")
        ]
