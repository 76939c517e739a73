"""The documented rules of the fake's request bodies (/work/shared/streamkap-api.md), as 422s.

Written from the API notes alone: a rule the notes state is checked, nothing else is guessed.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Collection, Mapping
from typing import Any

#: Kafka usernames: lowercase letters, digits and dashes, 1-24, no dash at either end.
USERNAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,22}[a-z0-9])?")
PASSWORD_LENGTH = (12, 128)
WHITELIST_MAX = 1000
OPERATIONS = {
    "TOPIC": frozenset(
        {
            "ALL",
            "ALTER",
            "ALTER_CONFIGS",
            "CREATE",
            "DELETE",
            "DESCRIBE",
            "DESCRIBE_CONFIGS",
            "READ",
            "WRITE",
        }
    ),
    "GROUP": frozenset({"DELETE", "DESCRIBE", "READ"}),
}
PATTERNS = frozenset({"LITERAL", "PREFIXED"})
TOOL_PROFILES = frozenset({"full", "read-only", "agent-operator", "infra-admin"})

Loc = tuple[str | int, ...]


class Refused(Exception):
    """An answer other than success: a status and its `detail` (a string or the 422 list)."""

    def __init__(self, status: int, detail: str | list[dict[str, Any]]) -> None:
        super().__init__(status, detail)
        self.status = status
        self.detail = detail


class Problems:
    """The 422 `detail` list being gathered for one body."""

    def __init__(self) -> None:
        self.found: list[dict[str, Any]] = []

    def add(self, loc: Loc, msg: str, kind: str = "value_error") -> None:
        self.found.append({"loc": ["body", *loc], "msg": msg, "type": kind})

    def raise_any(self) -> None:
        if self.found:
            raise Refused(422, self.found)


def body_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise Refused(422, [{"loc": ["body"], "msg": "expected an object", "type": "dict_type"}])
    return body


def optional_text(problems: Problems, body: Mapping[str, Any], name: str) -> None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        problems.add((name,), "expected a string or null", "string_type")


def name_field(problems: Problems, body: Mapping[str, Any], *, required: bool) -> None:
    value = body.get("name")
    if value is None and not required:
        return
    if not isinstance(value, str) or not 1 <= len(value) <= 100:
        problems.add(("name",), "a name of 1 to 100 characters is required")


def id_list(problems: Problems, body: Mapping[str, Any], name: str) -> list[str] | None:
    """A nullable list of ids; a given one needs at least one item."""
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        problems.add((name,), "expected a list of strings", "list_type")
        return None
    if not value:
        problems.add((name,), "List should have at least 1 item after validation", "too_short")
    return value


def access_ids(
    problems: Problems, body: Mapping[str, Any], known_roles: Collection[str]
) -> tuple[list[str] | None, list[str] | None]:
    """`role_ids` xor `permission_ids`, the roles known to the tenant."""
    roles = id_list(problems, body, "role_ids")
    permissions = id_list(problems, body, "permission_ids")
    if roles is not None and permissions is not None:
        problems.add(("role_ids",), "role_ids and permission_ids are mutually exclusive")
    for index, role in enumerate(roles or []):
        if role not in known_roles:
            problems.add(("role_ids", index), f"unknown role {role}")
    return roles, permissions


def username(problems: Problems, loc: Loc, value: Any) -> None:
    if not isinstance(value, str) or not USERNAME.fullmatch(value):
        problems.add(loc, "lowercase letters, digits and dashes, 1-24, no dash at either end")


def password(problems: Problems, loc: Loc, value: Any) -> None:
    low, high = PASSWORD_LENGTH
    if not isinstance(value, str) or not low <= len(value) <= high:
        problems.add(loc, f"a password of {low} to {high} characters is required")


def whitelist(problems: Problems, loc: Loc, value: Any) -> None:
    """A comma-separated list of IPs/CIDRs, at most 1000 characters; empty or null = any."""
    if value is None:
        return
    if not isinstance(value, str) or len(value) > WHITELIST_MAX:
        problems.add(loc, f"a comma-separated string of at most {WHITELIST_MAX} characters")
        return
    for part in filter(None, (part.strip() for part in value.split(","))):
        try:
            ipaddress.ip_network(part, strict=False)
        except ValueError:
            problems.add(loc, f"not an IP address or CIDR: {part}")


def acls(problems: Problems, loc: Loc, value: Any) -> None:
    if not isinstance(value, list):
        problems.add(loc, "expected a list of ACLs", "list_type")
        return
    for index, acl in enumerate(value):
        where = (*loc, index)
        if not isinstance(acl, dict):
            problems.add(where, "expected an object", "dict_type")
            continue
        resource = acl.get("resource", "TOPIC")
        if resource not in OPERATIONS:
            problems.add((*where, "resource"), "TOPIC or GROUP")
        elif acl.get("operation") not in OPERATIONS[resource]:
            problems.add((*where, "operation"), f"not an operation on a {resource}")
        if acl.get("resource_pattern_type") not in PATTERNS:
            problems.add((*where, "resource_pattern_type"), "LITERAL or PREFIXED")
        name = acl.get("topic_name")
        if not isinstance(name, str) or not name:
            problems.add((*where, "topic_name"), "a name is required")


def kafka_config(problems: Problems, value: Any) -> None:
    loc: Loc = ("kafka_config",)
    if not isinstance(value, dict):
        problems.add(loc, "expected an object", "dict_type")
        return
    username(problems, (*loc, "username"), value.get("username"))
    password(problems, (*loc, "password"), value.get("password"))
    whitelist(problems, (*loc, "whitelist_ips"), value.get("whitelist_ips"))
    acls(problems, (*loc, "kafka_acls"), value.get("kafka_acls", []))
    registry = value.get("is_create_schema_registry", False)
    if not isinstance(registry, bool):
        problems.add((*loc, "is_create_schema_registry"), "expected a boolean", "bool_type")


def tools(problems: Problems, body: Mapping[str, Any]) -> None:
    profile = body.get("tool_profile")
    if profile is not None and profile not in TOOL_PROFILES:
        problems.add(("tool_profile",), "one of " + ", ".join(sorted(TOOL_PROFILES)))
    for name in ("allowed_tools", "blocked_tools"):
        value = body.get(name)
        if value is not None and (
            not isinstance(value, list) or not all(isinstance(item, str) for item in value)
        ):
            problems.add((name,), "expected a list of strings", "list_type")
