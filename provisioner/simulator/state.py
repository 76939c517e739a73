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
from typing import Any, Final, Literal

from provisioner.simulator.faults import (
    AfterCreate,
    BadCreateAnswer,
    Call,
    FaultConfig,
    Refusal,
    ServiceState,
)
from provisioner.simulator.project_keys_state import ProjectKeyStore

CREDENTIALS_PATH = "/auth/client-credentials"
#: Status recorded in the call log for a call whose connection was dropped without an answer.
NO_RESPONSE = 0
_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
#: The simulator's one built-in login (besides the credentials it creates).
ADMIN_CLIENT_ID = "sim-admin"
ADMIN_SECRET = "sim-admin-secret"
#: The service (project) the simulator fills in when a create names none, as the API does.
SERVICE_ID = "svc-sim"

# The permissions the API checks (Frontegg's names). Create and list roles are documented by the
# provider's sources; read/delete for the other calls are the simulator's assumption.
READ_ROLES: Final = "fe.secure.read.roles"
READ_CREDENTIALS: Final = "fe.secure.read.tenantApiTokens"  # GET /auth/client-credentials
WRITE_CREDENTIALS: Final = "fe.secure.write.tenantApiTokens"  # POST and PATCH
DELETE_CREDENTIALS: Final = "fe.secure.delete.tenantApiTokens"  # DELETE
# Project keys: Streamkap names no permission, only "the Project Keys write permission" (in the
# Admin and Data Admin roles); these follow the names above, as the client's do.
READ_PROJECT_KEYS: Final = "fe.secure.read.projectKeys"  # GET /project-keys[/{id}]
WRITE_PROJECT_KEYS: Final = "fe.secure.write.projectKeys"  # POST and PATCH
DELETE_PROJECT_KEYS: Final = "fe.secure.delete.projectKeys"  # DELETE
ALL_PERMISSIONS: frozenset[str] = frozenset(
    {READ_ROLES, READ_CREDENTIALS, WRITE_CREDENTIALS, DELETE_CREDENTIALS}
    | {READ_PROJECT_KEYS, WRITE_PROJECT_KEYS, DELETE_PROJECT_KEYS}
)

#: Who `created_by_user` names: always the account's user, never anyone (null), or every second
#: credential null (the first one created has the user), as a listing mixing UI and API tokens.
CreatedBy = Literal["user", "null", "alternate"]

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


# Keys and names as the product and the provider's fixtures show them; the ids are opaque.
DEFAULT_ROLES: tuple[Role, ...] = (
    Role("role-admin", "Admin", "Admin", "Full access", tuple(sorted(ALL_PERMISSIONS))),
    Role(
        "role-data-admin",
        "DataAdmin",
        "Data Admin",
        "Manage pipelines, sources and destinations",
        (READ_CREDENTIALS, READ_ROLES, READ_PROJECT_KEYS, WRITE_PROJECT_KEYS),
    ),
    Role("role-read-only", "ReadOnly", "Read Only", "Read access", (READ_ROLES,)),
)
#: The role the `extra_role` create fault adds when it is not already asked for.
EXTRA_ROLE_ID = "role-read-only"

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
    created_by: Mapping[str, Any] | None = None  # the `User` who made it; None: not a person


@dataclass(frozen=True)
class _Token:
    principal: str
    expires_at: datetime


class _Keep:
    """The type of `KEEP`: "leave this field as it is" where None is a value."""


KEEP = _Keep()


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
        admin_permissions: Iterable[str] = ALL_PERMISSIONS,
        service_id: str = SERVICE_ID,
        fill_service_id: bool = True,
        patch_supported: bool = True,
        roles_xor_permissions: bool = True,
        created_by_user: CreatedBy = "alternate",
    ) -> None:
        super().__init__(now, faults)
        self.admin_client_id = admin_client_id
        self._admin_secret = admin_secret
        self.user: Mapping[str, Any] = MappingProxyType(dict(user))
        self.roles: Mapping[str, Role] = MappingProxyType({role.id: role for role in roles})
        # Permission ids the account knows; None accepts any (the API's list is not public).
        self.permissions = frozenset(permissions) if permissions is not None else None
        # The options below are plain attributes: a test may change them between calls.
        #: What the admin login may do (default: everything); the API answers 403 otherwise.
        self.admin_permissions: frozenset[str] = frozenset(admin_permissions)
        #: The caller's service, filled in when a create names none (with `fill_service_id`).
        self.service_id = service_id
        self.fill_service_id = fill_service_id
        #: Whether `PATCH /auth/client-credentials/{id}` exists; without it the API answers 405.
        self.patch_supported = patch_supported
        #: Whether a create must name roles or permissions, and not both (422 otherwise).
        self.roles_xor_permissions = roles_xor_permissions
        self.created_by_user: CreatedBy = created_by_user
        self._created = 0  # credentials created so far, for "alternate"
        self._credentials: dict[str, CredentialRecord] = {}
        self._tokens: dict[str, _Token] = {}
        self._refresh_tokens: dict[str, str] = {}
        self._issued: list[str] = []  # every secret ever handed out, deleted ones included
        #: The account's project keys (`/project-keys`); their API credentials log in here too.
        self.project_keys = ProjectKeyStore(self.now, lambda: self.faults, self._delete_fails)

    # Faults ------------------------------------------------------------------------------------

    def refusal(self, *, token_call: bool) -> Refusal | None:
        """The fault answer this call gets instead of being done, if any."""
        now = self.now()
        with self._lock:
            return self._decider.before_call(now, token_call=token_call)

    def bad_create_answer(self) -> BadCreateAnswer | None:
        """Which defect the next create answer has, if any (`FaultConfig.bad_create_answer`)."""
        with self._lock:
            return self._decider.bad_create()

    def after_create(self) -> AfterCreate:
        """How a committed create answers: None (normally), "drop" or "error"."""
        with self._lock:
            return self._decider.after_create()

    def _delete_fails(self) -> bool:
        with self._lock:
            return self._decider.project_key_delete_fails()

    # Tokens ------------------------------------------------------------------------------------

    def login(self, client_id: str, secret: str) -> dict[str, Any] | None:
        """A token answer for the admin login, any live credential, or a project key's API
        credential (which moves the key's `last_used_at`); None if they do not match."""
        with self._lock:
            record = self._credentials.get(client_id)
        valid = (
            (client_id == self.admin_client_id and _same(secret, self._admin_secret))
            or (record is not None and _same(secret, record.secret))
            or self.project_keys.login(client_id, secret)
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
        return self.principal_of(access_token) is not None

    def principal_of(self, access_token: str) -> str | None:
        """The client id a live access token was issued to; None if unknown or expired."""
        now = self.now()
        with self._lock:
            token = self._tokens.get(access_token)
            if token is not None and token.expires_at <= now:
                del self._tokens[access_token]
                token = None
        return None if token is None else token.principal

    def permissions_of(self, principal: str) -> frozenset[str]:
        """What a login may do: the admin's configured set, a credential's roles' permissions
        plus its permission ids (a project key's likewise), nothing for a credential deleted
        since it logged in."""
        if principal == self.admin_client_id:
            return self.admin_permissions
        record = self.get(principal)
        grants = (
            (record.role_ids, record.permission_ids)
            if record is not None
            else self.project_keys.grants_of(principal)
        )
        if grants is None:
            return frozenset()
        role_ids, permission_ids = grants
        granted = {
            p for role in role_ids if role in self.roles for p in self.roles[role].permissions
        }
        return frozenset(granted | set(permission_ids))

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
        """Store a credential exactly as given (no service id filled in); unknown role ids:
        ValueError. `created_by` follows `created_by_user`."""
        roles = self._known_roles(role_ids)
        secret = secrets.token_urlsafe(32)
        with self._lock:
            self._created += 1
            person = self.created_by_user == "user" or (
                self.created_by_user == "alternate" and self._created % 2 == 1
            )
            record = CredentialRecord(
                client_id=f"cc_{secrets.token_hex(12)}",
                secret=secret,
                description=description,
                service_id=service_id,
                role_ids=roles,
                permission_ids=tuple(permission_ids),
                created_at=created_at or self.now(),
                created_by=self.user if person else None,
            )
            self._credentials[record.client_id] = record
            self._issued.append(record.secret)
        return record

    def update_credential(
        self,
        client_id: str,
        *,
        description: str | _Keep | None = KEEP,
        role_ids: Iterable[str] | None = None,
    ) -> CredentialRecord | None:
        """Change a credential's description and/or roles in place, as PATCH does (client id,
        secret, service id and permission ids stay); None if there is no such credential."""
        roles = None if role_ids is None else self._known_roles(role_ids)
        with self._lock:
            record = self._credentials.get(client_id)
            if record is None:
                return None
            if not isinstance(description, _Keep):
                record = replace(record, description=description)
            if roles is not None:
                record = replace(record, role_ids=roles)
            self._credentials[client_id] = record
        return record

    def _known_roles(self, role_ids: Iterable[str]) -> tuple[str, ...]:
        roles = tuple(role_ids)
        unknown = [role for role in roles if role not in self.roles]
        if unknown:
            raise ValueError(f"unknown role ids: {unknown}")
        return roles

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

    def write_calls(self, path_prefix: str = CREDENTIALS_PATH) -> list[Call]:
        """The POST, PATCH and DELETE calls to the client-credentials endpoints (or those under
        another prefix, e.g. `/project-keys`), whatever answer."""
        return [
            call
            for call in self.calls(path_prefix=path_prefix)
            if call.method in ("POST", "PATCH", "DELETE")
        ]
