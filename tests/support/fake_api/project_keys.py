"""The fake's `/project-keys`: records, the one-time file, PATCH, and statuses moved by reads.

Statuses move when a key is read (listed or fetched), not on a clock: a key asking for Kafka
access shows `creating` to `activation_reads` reads, then is `active` (to every call); a deleted
key shows `deleting` to `deletion_reads` reads, then is gone, or `delete_failed` when its id is
in `delete_fails`. Zero reads: the status moves on before the first read.

Deliberate differences from the project's simulator, all within the notes: the listing is
newest first, `whitelist_ips` is the documented comma-separated string, a DELETE answers 200
with the key, descriptions lose HTML tags, and ids look otherwise.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from tests.support.fake_api import checks
from tests.support.fake_api.checks import Problems, Refused

CREATING, ACTIVE, DELETING, DELETE_FAILED = "creating", "active", "deleting", "delete_failed"
BUSY = frozenset({CREATING, DELETING, DELETE_FAILED})
PROJECT = "fake-project"
BOOTSTRAP = "kafka.fake-project.example:9092"
_TAG = re.compile(r"<[^>]*>")


def stamp(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def masked(secret: str) -> str:
    return f"{secret[:3]}******{secret[-3:]}"


@dataclass
class FakeKey:
    """One project key, secrets included; `reads_left`: reads still showing `status`."""

    id: str
    name: str
    description: str | None
    status: str
    created_at: datetime
    role_ids: list[str] = field(default_factory=list)
    permission_ids: list[str] = field(default_factory=list)
    api_client_id: str | None = None
    api_secret: str | None = None
    kafka_username: str | None = None
    kafka_password: str | None = None
    kafka_acls: list[dict[str, Any]] = field(default_factory=list)
    whitelist_ips: str = ""
    schema_registry: bool = False
    tool_profile: str | None = None
    allowed_tools: list[str] = field(default_factory=list)
    blocked_tools: list[str] = field(default_factory=list)
    last_used_at: datetime | None = None
    reads_left: int = 0


class ProjectKeys:
    """Every project key of the fake tenant; the caller (the app) holds the fake's lock."""

    def __init__(
        self,
        roles: list[dict[str, Any]],
        clock: Callable[[], datetime],
        *,
        activation_reads: int,
        deletion_reads: int,
    ) -> None:
        self.keys: dict[str, FakeKey] = {}
        #: Ids whose next deletion ends `delete_failed` instead of the key being gone.
        self.delete_fails: set[str] = set()
        self.activation_reads = activation_reads
        self.deletion_reads = deletion_reads
        self._roles = roles
        self._clock = clock

    # --- reads ---------------------------------------------------------------------------------

    def listing(self) -> list[dict[str, Any]]:
        shown = [self._read(key_id) for key_id in list(self.keys)]
        return [self._summary(key) for key in reversed(shown) if key is not None]

    def detail(self, key_id: str) -> dict[str, Any]:
        key = self._read(key_id) if key_id in self.keys else None
        if key is None:
            raise Refused(404, "Project key not found")
        return self._detail(key)

    # --- writes --------------------------------------------------------------------------------

    def create(self, body: Any, api_url: str) -> dict[str, Any]:
        body = checks.body_object(body)
        problems = Problems()
        checks.name_field(problems, body, required=True)
        checks.optional_text(problems, body, "description")
        roles, permissions = checks.access_ids(problems, body, self._role_ids())
        kafka = body.get("kafka_config")
        if kafka is not None:
            checks.kafka_config(problems, kafka)
        checks.tools(problems, body)
        if roles is None and permissions is None and kafka is None:
            problems.add((), "a project key needs API access or Kafka access")
        problems.raise_any()
        if kafka is not None:
            self._check_free(kafka["username"], None)
        key = FakeKey(
            id=f"fpk-{secrets.token_hex(6)}",
            name=body["name"],
            description=_sanitized(body.get("description")),
            status=ACTIVE,
            created_at=self._clock(),
            tool_profile=body.get("tool_profile"),
            allowed_tools=list(body.get("allowed_tools") or []),
            blocked_tools=list(body.get("blocked_tools") or []),
        )
        api = self._add_api(key, roles, permissions, api_url) if roles or permissions else None
        kafka_file = self._add_kafka(key, kafka) if kafka is not None else None
        self.keys[key.id] = key
        return {
            "project_key_id": key.id,
            "project": PROJECT,
            "created_at": stamp(key.created_at),
            "type": "streamkap_project_key",
            "api": api,
            "kafka": kafka_file,
            "kafka_acls": key.kafka_acls,
            "tool_profile": key.tool_profile,
            "allowed_tools": key.allowed_tools,
            "blocked_tools": key.blocked_tools,
            "created_by": "fake-admin",
        }

    def patch(self, key_id: str, body: Any, api_url: str) -> dict[str, Any]:
        key = self.keys.get(key_id)
        if key is None:
            raise Refused(404, "Project key not found")
        body = checks.body_object(body)
        if key.status in BUSY:
            raise Refused(400, f"The project key is {key.status}")
        roles, permissions = self._check_patch(key, body)
        answer: dict[str, Any] = {}
        if key.api_client_id is None and (roles or permissions):
            answer["new_api_credentials"] = self._add_api(key, roles, permissions, api_url)
        elif roles is not None:
            key.role_ids = roles
        if body.get("kafka_config") is not None:
            answer["new_kafka_credentials"] = self._add_kafka(key, body["kafka_config"])
        self._apply_simple(key, body)
        return {**self._detail(key), **answer}

    def delete(self, key_id: str) -> dict[str, Any]:
        key = self.keys.get(key_id)
        if key is None:
            raise Refused(404, "Project key not found")
        if key.status != DELETING:
            key.status, key.reads_left = DELETING, self.deletion_reads
        return self._summary(key)

    def login(self, client_id: str, secret: str) -> bool:
        """A login with a key's API access: moves its `last_used_at` (while it is usable)."""
        for key in self.keys.values():
            if key.api_client_id == client_id and key.status in {CREATING, ACTIVE}:
                if not secrets.compare_digest(key.api_secret or "", secret):
                    return False
                key.last_used_at = self._clock()
                return True
        return False

    # --- inside --------------------------------------------------------------------------------

    def _read(self, key_id: str) -> FakeKey | None:
        """The key as this read shows it; the read counts toward the status in progress, which
        moves on once `reads_left` reads have shown it (at once when there are none left)."""
        if self.keys[key_id].reads_left <= 0:
            self._advance(key_id)
        key = self.keys.get(key_id)
        if key is None:
            return None
        shown = replace(key)
        if key.status in (CREATING, DELETING):
            key.reads_left -= 1
            if key.reads_left <= 0:
                self._advance(key_id)
        return shown

    def _advance(self, key_id: str) -> None:
        key = self.keys[key_id]
        if key.status == CREATING:
            key.status = ACTIVE
        elif key.status == DELETING and key_id in self.delete_fails:
            key.status = DELETE_FAILED
        elif key.status == DELETING:
            del self.keys[key_id]

    def _check_patch(
        self, key: FakeKey, body: dict[str, Any]
    ) -> tuple[list[str] | None, list[str] | None]:
        problems = Problems()
        checks.name_field(problems, body, required=False)
        checks.optional_text(problems, body, "description")
        roles, permissions = checks.access_ids(problems, body, self._role_ids())
        checks.tools(problems, body)
        kafka = body.get("kafka_config")
        if kafka is not None:
            checks.kafka_config(problems, kafka)
        if "kafka_acls" in body:
            checks.acls(problems, ("kafka_acls",), body["kafka_acls"])
        checks.whitelist(problems, ("whitelist_ips",), body.get("whitelist_ips"))
        if body.get("kafka_password") is not None:
            checks.password(problems, ("kafka_password",), body["kafka_password"])
        problems.raise_any()
        has_kafka = key.kafka_username is not None
        if kafka is not None and has_kafka:
            raise Refused(400, "The key has Kafka access already")
        kafka_fields = ("kafka_acls", "whitelist_ips", "kafka_password")
        if not has_kafka and any(body.get(name) is not None for name in kafka_fields):
            raise Refused(400, "The key has no Kafka access")
        if permissions is not None and key.api_client_id is not None:
            raise Refused(400, "Permissions cannot change after creation")
        if roles is not None and key.permission_ids:
            raise Refused(400, "The key's API access uses permissions, not roles")
        if kafka is not None:
            self._check_free(kafka["username"], key.id)
        return roles, permissions

    def _apply_simple(self, key: FakeKey, body: dict[str, Any]) -> None:
        if body.get("name") is not None:
            key.name = body["name"]
        if "description" in body:
            key.description = _sanitized(body["description"])
        if body.get("kafka_acls") is not None:
            key.kafka_acls = [_acl(acl) for acl in body["kafka_acls"]]
        if body.get("whitelist_ips") is not None:
            key.whitelist_ips = body["whitelist_ips"]
        if body.get("kafka_password") is not None:
            key.kafka_password = body["kafka_password"]
        if "tool_profile" in body:
            key.tool_profile = body["tool_profile"]
        for name in ("allowed_tools", "blocked_tools"):
            if body.get(name) is not None:
                setattr(key, name, list(body[name]))

    def _add_api(
        self,
        key: FakeKey,
        roles: list[str] | None,
        permissions: list[str] | None,
        api_url: str,
    ) -> dict[str, Any]:
        key.role_ids, key.permission_ids = list(roles or []), list(permissions or [])
        key.api_client_id = f"fpk-client-{secrets.token_hex(5)}"
        key.api_secret = secrets.token_urlsafe(24)
        return {
            "client_id": key.api_client_id,
            "client_secret": key.api_secret,
            "token_endpoint": f"{api_url}/auth/access-token",
            "api_url": api_url,
            "roles": [role["name"] for role in self._roles if role["id"] in key.role_ids],
        }

    def _add_kafka(self, key: FakeKey, kafka: dict[str, Any]) -> dict[str, Any]:
        key.kafka_username = kafka["username"]
        key.kafka_password = kafka["password"]
        key.kafka_acls = [_acl(acl) for acl in kafka.get("kafka_acls") or []]
        key.whitelist_ips = kafka.get("whitelist_ips") or ""
        key.schema_registry = bool(kafka.get("is_create_schema_registry"))
        # The Kafka user, proxy and ACLs are set up asynchronously.
        key.status, key.reads_left = CREATING, self.activation_reads
        registry = f"https://schema.{PROJECT}.example" if key.schema_registry else None
        return {
            "username": key.kafka_username,
            "password": key.kafka_password,
            "bootstrap_servers": BOOTSTRAP,
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": "PLAIN",
            "schema_registry_url": registry,
        }

    def _check_free(self, username: str, key_id: str | None) -> None:
        """A Kafka username is unique in the tenant, until its key is gone."""
        for other in self.keys.values():
            if other.kafka_username == username and other.id != key_id:
                raise Refused(409, f"Kafka user {username} already exists")

    def _role_ids(self) -> Collection[str]:
        return {role["id"] for role in self._roles}

    def _summary(self, key: FakeKey) -> dict[str, Any]:
        return {
            "id": key.id,
            "name": key.name,
            "service_id": PROJECT,
            "status": key.status,
            "description": key.description,
            "created_at": stamp(key.created_at),
            "created_by_user": {"email": "admin@fake.example"},
            "api_client_id": key.api_client_id,
            "api_client_id_masked_secret": masked(key.api_secret) if key.api_secret else None,
            "kafka_username": key.kafka_username,
            "roles": [role for role in self._roles if role["id"] in key.role_ids],
            "last_used_at": stamp(key.last_used_at),
            "tool_profile": key.tool_profile,
            "allowed_tools": key.allowed_tools,
            "blocked_tools": key.blocked_tools,
        }

    def _detail(self, key: FakeKey) -> dict[str, Any]:
        has_kafka = key.kafka_username is not None
        return {
            **self._summary(key),
            "kafka_acls": key.kafka_acls,
            "whitelist_ips": key.whitelist_ips,
            "kafka_proxy_endpoint": f"proxy.{PROJECT}.example:9092" if has_kafka else None,
            "schema_proxy_endpoint": (
                f"https://schema.{PROJECT}.example" if key.schema_registry else None
            ),
            "token_ttl_seconds": 3600,
        }


def _acl(acl: dict[str, Any]) -> dict[str, Any]:
    return {
        "topic_name": acl["topic_name"],
        "operation": acl["operation"],
        "resource_pattern_type": acl["resource_pattern_type"],
        "resource": acl.get("resource", "TOPIC"),
    }


def _sanitized(description: str | None) -> str | None:
    """Descriptions are HTML-sanitized: tags are dropped."""
    return None if description is None else _TAG.sub("", description)
