"""The JSON shapes of `/project-keys`, checked where they enter (docs/api.md, "Project keys").

An answer that is not the documented shape raises `Malformed` naming the field (never its value);
the adapter turns it into an `UnusableAnswer` naming the call. Every secret (an API client
secret, a Kafka password) becomes a `SecretStr` and is registered for redaction the moment it is
parsed, before anything else can fail and echo it. Fields the provisioner does not use are
ignored, so a new field in the API's answer breaks nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import SecretStr

from provisioner.logs import register_secret
from provisioner.streamkap.answers import Malformed

#: The documented statuses; others are kept as the API spells them (the list is not exhaustive).
CREATING, ACTIVE, DELETING, DELETE_FAILED = "creating", "active", "deleting", "delete_failed"


@dataclass(frozen=True, slots=True)
class KafkaAcl:
    """One Kafka ACL as the API spells it (`operation` e.g. READ; `resource` TOPIC or GROUP)."""

    topic_name: str
    operation: str
    resource_pattern_type: str  # LITERAL or PREFIXED
    resource: str = "TOPIC"

    def json(self) -> dict[str, str]:
        return {
            "topic_name": self.topic_name,
            "operation": self.operation,
            "resource_pattern_type": self.resource_pattern_type,
            "resource": self.resource,
        }


@dataclass(frozen=True, slots=True)
class ProjectKeySummary:
    """A key as `GET /project-keys` lists it: no secrets."""

    id: str
    name: str
    status: str
    description: str | None
    service_id: str | None
    created_at: datetime | None
    last_used_at: datetime | None
    api_client_id: str | None  # None: no API access
    kafka_username: str | None  # None: no Kafka access
    role_ids: frozenset[str]
    tool_profile: str | None
    allowed_tools: tuple[str, ...]
    blocked_tools: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ProjectKeyDetail(ProjectKeySummary):
    """A key as `GET /project-keys/{id}` (and PATCH) answers: the summary and its Kafka setup."""

    kafka_acls: tuple[KafkaAcl, ...]
    whitelist_ips: tuple[str, ...]  # empty: any address
    kafka_proxy_endpoint: str | None
    schema_proxy_endpoint: str | None


@dataclass(frozen=True, slots=True)
class ApiAccess:
    """API access as a create (or a PATCH adding it) shows it, once."""

    client_id: str
    client_secret: SecretStr
    token_endpoint: str | None
    api_url: str | None


@dataclass(frozen=True, slots=True)
class KafkaAccess:
    """Kafka access as a create (or a PATCH adding it) shows it, once."""

    username: str
    password: SecretStr
    bootstrap_servers: str
    security_protocol: str | None
    sasl_mechanism: str | None
    schema_registry_url: str | None


@dataclass(frozen=True, slots=True)
class ProjectKeyFile:
    """The one-time credential file a create answers with; `api`/`kafka` None when not asked."""

    project_key_id: str
    api: ApiAccess | None
    kafka: KafkaAccess | None
    kafka_acls: tuple[KafkaAcl, ...]
    tool_profile: str | None
    allowed_tools: tuple[str, ...]
    blocked_tools: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PatchedProjectKey:
    """A PATCH's answer: the detail, and the credentials of an access it added (shown once)."""

    detail: ProjectKeyDetail
    new_api_credentials: ApiAccess | None
    new_kafka_credentials: KafkaAccess | None


class MissingSecrets(ValueError):
    """A create's answer lacks the secrets of an access that was asked for (no values named)."""


def parse_listing(body: Any) -> list[ProjectKeySummary]:
    """`GET /project-keys`: each key once (a repeated id is dropped)."""
    unique: dict[str, ProjectKeySummary] = {}
    for item in _objects(body, "project keys"):
        summary = parse_summary(item)
        unique.setdefault(summary.id, summary)
    return list(unique.values())


def parse_summary(item: Mapping[str, Any]) -> ProjectKeySummary:
    """One listed key."""
    return ProjectKeySummary(**_summary_fields(item))


def parse_detail(body: Any) -> ProjectKeyDetail:
    """`GET /project-keys/{id}`, and the detail part of a PATCH's answer."""
    item = _object(body)
    return ProjectKeyDetail(
        **_summary_fields(item),
        kafka_acls=_acls(item.get("kafka_acls")),
        whitelist_ips=_ips(item.get("whitelist_ips")),
        kafka_proxy_endpoint=_optional_string(item, "kafka_proxy_endpoint"),
        schema_proxy_endpoint=_optional_string(item, "schema_proxy_endpoint"),
    )


def parse_patched(body: Any) -> PatchedProjectKey:
    """A PATCH's answer; the new credentials' secrets are registered before the rest is read."""
    item = _object(body)
    new_api = _access(item, "new_api_credentials", parse_api_access)
    new_kafka = _access(item, "new_kafka_credentials", parse_kafka_access)
    return PatchedProjectKey(parse_detail(item), new_api, new_kafka)


def created_id(body: Any) -> str | None:
    """The id a create's answer names, if it names one at all."""
    key_id = body.get("project_key_id") if isinstance(body, dict) else None
    return key_id if isinstance(key_id, str) and key_id else None


def parse_file(body: Any, *, wants_api: bool, wants_kafka: bool) -> ProjectKeyFile:
    """A create's answer: Malformed (the whole answer), or MissingSecrets (an access asked for
    came without its secrets). Secrets are registered first, whatever else is wrong."""
    item = _object(body)
    api = _access(item, "api", parse_api_access)
    kafka = _access(item, "kafka", parse_kafka_access)
    missing = [
        name
        for name, wanted, got in (("api", wants_api, api), ("kafka", wants_kafka, kafka))
        if wanted and got is None
    ]
    if missing:
        raise MissingSecrets(" and ".join(f"no {name} credentials" for name in missing))
    return ProjectKeyFile(
        project_key_id=_string(item, "project_key_id"),
        api=api,
        kafka=kafka,
        kafka_acls=_acls(item.get("kafka_acls")),
        tool_profile=_optional_string(item, "tool_profile"),
        allowed_tools=_strings(item, "allowed_tools"),
        blocked_tools=_strings(item, "blocked_tools"),
    )


def parse_api_access(item: Mapping[str, Any]) -> ApiAccess:
    """`api` / `new_api_credentials`: the client secret must be a real, unmasked one."""
    secret = _secret(item, "client_secret")
    client_id = _string(item, "client_id")
    if not client_id:
        raise Malformed("field 'client_id' is empty")
    return ApiAccess(
        client_id=client_id,
        client_secret=secret,
        token_endpoint=_optional_string(item, "token_endpoint"),
        api_url=_optional_string(item, "api_url"),
    )


def parse_kafka_access(item: Mapping[str, Any]) -> KafkaAccess:
    """`kafka` / `new_kafka_credentials`: the password must be a real, unmasked one."""
    password = _secret(item, "password")
    return KafkaAccess(
        username=_string(item, "username"),
        password=password,
        bootstrap_servers=_string(item, "bootstrap_servers"),
        security_protocol=_optional_string(item, "security_protocol"),
        sasl_mechanism=_optional_string(item, "sasl_mechanism"),
        schema_registry_url=_optional_string(item, "schema_registry_url"),
    )


# --- fields -----------------------------------------------------------------------------------


def _summary_fields(item: Mapping[str, Any]) -> dict[str, Any]:
    key_id = _string(item, "id")
    if not key_id:
        raise Malformed("a project key has an empty id")
    return {
        "id": key_id,
        "name": _string(item, "name"),
        "status": _string(item, "status"),
        "description": _optional_string(item, "description"),
        "service_id": _optional_string(item, "service_id"),
        "created_at": _created_at(item),
        "last_used_at": _time(item, "last_used_at"),
        "api_client_id": _optional_string(item, "api_client_id") or None,
        "kafka_username": _optional_string(item, "kafka_username") or None,
        "role_ids": frozenset(
            _string(role, "id") for role in _objects(item.get("roles") or [], "roles")
        ),
        "tool_profile": _optional_string(item, "tool_profile"),
        "allowed_tools": _strings(item, "allowed_tools"),
        "blocked_tools": _strings(item, "blocked_tools"),
    }


def _access(item: Mapping[str, Any], name: str, parse: Any) -> Any:
    """An optional nested access object (`api`, `kafka`, `new_*_credentials`), or None."""
    value = item.get(name)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise Malformed(f"field {name!r} is {_kind(value)}, expected an object")
    try:
        return parse(value)
    except Malformed as exc:
        raise Malformed(f"in {name!r}: {exc}") from None


def _secret(item: Mapping[str, Any], name: str) -> SecretStr:
    """A secret, registered at once; missing, empty, not a string or masked: Malformed."""
    value = item.get(name)
    if isinstance(value, str):
        register_secret(value)
    if not isinstance(value, str) or not value.strip():
        raise Malformed(f"field {name!r} is {_kind(value) if value else 'missing or empty'}")
    if "***" in value:
        raise Malformed(f"field {name!r} is masked")
    return SecretStr(value)


def _acls(value: Any) -> tuple[KafkaAcl, ...]:
    return tuple(
        KafkaAcl(
            topic_name=_string(acl, "topic_name"),
            operation=_string(acl, "operation"),
            resource_pattern_type=_string(acl, "resource_pattern_type"),
            resource=_optional_string(acl, "resource") or "TOPIC",
        )
        for acl in _objects(value or [], "kafka_acls")
    )


def _ips(value: Any) -> tuple[str, ...]:
    """`whitelist_ips`: documented as a comma-separated string; a list is taken as well."""
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    if isinstance(value, list) and all(isinstance(part, str) for part in value):
        return tuple(value)
    raise Malformed(f"field 'whitelist_ips' is {_kind(value)}, expected a string")


def _strings(item: Mapping[str, Any], name: str) -> tuple[str, ...]:
    value = item.get(name)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(part, str) for part in value):
        raise Malformed(f"field {name!r} is {_kind(value)}, expected a list of strings")
    return tuple(value)


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise Malformed(f"expected a JSON object, got {_kind(body)}")
    return body


def _objects(body: Any, what: str) -> list[dict[str, Any]]:
    if not isinstance(body, list) or not all(isinstance(item, dict) for item in body):
        raise Malformed(f"expected a list of {what}, got {_kind(body)}")
    return body


def _string(item: Mapping[str, Any], name: str) -> str:
    value = item.get(name)
    if not isinstance(value, str):
        shown = "missing" if value is None else _kind(value)
        raise Malformed(f"field {name!r} is {shown}, expected a string")
    return value


def _optional_string(item: Mapping[str, Any], name: str) -> str | None:
    value = item.get(name)
    if value is not None and not isinstance(value, str):
        raise Malformed(f"field {name!r} is {_kind(value)}, expected a string or null")
    return value


def _time(item: Mapping[str, Any], name: str) -> datetime | None:
    value = _optional_string(item, name)
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Malformed(f"field {name!r} is not an ISO 8601 time") from None


def _created_at(item: Mapping[str, Any]) -> datetime | None:
    """As for client credentials, an unreadable creation time counts as brand new; an unreadable
    `last_used_at` is refused instead, since "never used" would let a key in use be retired."""
    try:
        return _time(item, "created_at")
    except Malformed:
        return None


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), "null" if value is None else f"a {type(value).__name__}"
    )
