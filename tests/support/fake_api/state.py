"""The fake tenant: its roles, logins and tokens, client credentials, project keys, call log.

Everything a test may assert on is a plain attribute: `client_credentials`, `keys`, `calls`
(each `(method, path)` in arrival order), `logins` (client ids that logged in). The app takes
`lock` around each request; a test reading while a run is going on takes it too.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tests.support.fake_api import checks
from tests.support.fake_api.checks import Problems, Refused
from tests.support.fake_api.project_keys import PROJECT, FakeKey, ProjectKeys, masked, stamp

ADMIN_CLIENT_ID = "fake-admin"
ADMIN_SECRET = "fake-admin-secret-5c1f9b"
ROLES: list[dict[str, Any]] = [
    {"id": "fr-1", "key": "Admin", "name": "Admin", "description": "Everything"},
    {"id": "fr-2", "key": "DataAdmin", "name": "Data Admin", "description": "Pipelines"},
    {"id": "fr-3", "key": "ReadOnly", "name": "Read Only", "description": "Reads"},
]


@dataclass
class FakeClientCredential:
    client_id: str
    secret: str
    description: str | None
    service_id: str | None
    role_ids: list[str]
    permission_ids: list[str]
    created_at: datetime


@dataclass
class FakeApi:
    """The fake's state. `activation_reads`/`deletion_reads`: reads a project key shows
    `creating`/`deleting` to (see project_keys.py; read when it is built: change them later on
    `project_keys`); `token_lifetime` in seconds."""

    activation_reads: int = 1
    deletion_reads: int = 1
    token_lifetime: int = 3600
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    client_credentials: dict[str, FakeClientCredential] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.project_keys = ProjectKeys(
            ROLES,
            self.clock,
            activation_reads=self.activation_reads,
            deletion_reads=self.deletion_reads,
        )
        self._tokens: dict[str, str] = {}  # access token -> client id
        self._refresh: dict[str, str] = {}  # refresh token -> client id

    @property
    def keys(self) -> dict[str, FakeKey]:
        return self.project_keys.keys

    @property
    def delete_fails(self) -> set[str]:
        """Project key ids whose deletion ends `delete_failed`."""
        return self.project_keys.delete_fails

    # --- tokens --------------------------------------------------------------------------------

    def login(self, body: Any) -> dict[str, Any]:
        body = checks.body_object(body)
        client_id, secret = body.get("client_id"), body.get("secret")
        if not isinstance(client_id, str) or not isinstance(secret, str):
            problem = {"loc": ["body"], "msg": "client_id, secret: required", "type": "missing"}
            raise Refused(422, [problem])
        if not self._accepts(client_id, secret):
            raise Refused(401, "Invalid client credentials")
        self.logins.append(client_id)
        return self._issue(client_id)

    def refresh(self, body: Any) -> dict[str, Any]:
        token = checks.body_object(body).get("refresh_token")
        client_id = self._refresh.pop(token, None) if isinstance(token, str) else None
        if client_id is None:
            raise Refused(401, "Invalid refresh token")
        return self._issue(client_id)

    def caller(self, authorization: str | None) -> str:
        """The client id a bearer token was issued to; 401 for any other header."""
        scheme, _, token = (authorization or "").partition(" ")
        client_id = self._tokens.get(token) if scheme.lower() == "bearer" else None
        if client_id is None:
            raise Refused(401, "Not authenticated")
        return client_id

    # --- client credentials --------------------------------------------------------------------

    def list_credentials(self) -> list[dict[str, Any]]:
        return [self._credential(item) for item in self.client_credentials.values()]

    def create_credential(self, body: Any) -> dict[str, Any]:
        body = checks.body_object(body)
        problems = Problems()
        checks.optional_text(problems, body, "description")
        checks.optional_text(problems, body, "service_id")
        roles, permissions = checks.access_ids(problems, body, {role["id"] for role in ROLES})
        problems.raise_any()
        item = FakeClientCredential(
            client_id=f"fcc-{secrets.token_hex(6)}",
            secret=secrets.token_urlsafe(24),
            description=body.get("description"),
            service_id=body.get("service_id") or PROJECT,  # computed: the caller's project
            role_ids=roles or [],
            permission_ids=permissions or [],
            created_at=self.clock(),
        )
        self.client_credentials[item.client_id] = item
        return {**self._credential(item), "secret": item.secret}

    def patch_credential(self, client_id: str, body: Any) -> dict[str, Any]:
        item = self._found(client_id)
        body = checks.body_object(body)
        problems = Problems()
        checks.optional_text(problems, body, "description")
        roles = checks.id_list(problems, body, "role_ids")
        for index, role in enumerate(roles or []):
            if role not in {known["id"] for known in ROLES}:
                problems.add(("role_ids", index), f"unknown role {role}")
        problems.raise_any()
        if "description" in body:
            item.description = body["description"]
        if roles is not None:
            item.role_ids, item.permission_ids = roles, []
        return self._credential(item)

    def delete_credential(self, client_id: str) -> None:
        self._found(client_id)
        del self.client_credentials[client_id]

    # --- inside --------------------------------------------------------------------------------

    def _accepts(self, client_id: str, secret: str) -> bool:
        if client_id == ADMIN_CLIENT_ID:
            return secrets.compare_digest(secret, ADMIN_SECRET)
        item = self.client_credentials.get(client_id)
        if item is not None:
            return secrets.compare_digest(secret, item.secret)
        return self.project_keys.login(client_id, secret)

    def _issue(self, client_id: str) -> dict[str, Any]:
        access, refresh = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        self._tokens[access] = client_id
        self._refresh[refresh] = client_id
        expires = datetime.fromtimestamp(self.clock().timestamp() + self.token_lifetime, UTC)
        return {
            "accessToken": access,
            "expires": stamp(expires),
            "expiresIn": self.token_lifetime,
            "refreshToken": refresh,
        }

    def _found(self, client_id: str) -> FakeClientCredential:
        item = self.client_credentials.get(client_id)
        if item is None:
            raise Refused(404, "Client credential not found")
        return item

    def _credential(self, item: FakeClientCredential) -> dict[str, Any]:
        return {
            "created_by_user": None,
            "client_id": item.client_id,
            "description": item.description,
            "created_at": stamp(item.created_at),
            "roles": [role for role in ROLES if role["id"] in item.role_ids],
            "service_id": item.service_id,
            "secret": masked(item.secret),
        }
