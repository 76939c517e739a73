"""How a live credential differs from the manifest, and which differences change in place.

Pure, like the planner that uses it: each drift is a (reason, detail) pair, most telling first;
`IN_PLACE` says which reasons a PATCH carries for each kind (the others need a new credential).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from provisioner.kafka_usernames import same_user
from provisioner.model import (
    AclEntry,
    CredentialKind,
    DesiredCredential,
    KafkaAccess,
    McpScope,
    Reason,
    RemoteCredential,
)

#: What each kind changes in place (PATCH, its secrets kept); any other drift replaces it.
IN_PLACE = {
    CredentialKind.CLIENT_CREDENTIAL: frozenset({Reason.DRIFT_ROLES}),
    CredentialKind.PROJECT_KEY: frozenset(
        {
            Reason.DRIFT_ROLES,
            Reason.DRIFT_NAME,
            Reason.DRIFT_DESCRIPTION,
            Reason.DRIFT_KAFKA,
            Reason.DRIFT_MCP,
            Reason.ACCESS_ADDED,
        }
    ),
}


def differences(wanted: DesiredCredential, current: RemoteCredential) -> list[tuple[Reason, str]]:
    """How the live credential differs from the manifest, most telling first."""
    if wanted.kind is CredentialKind.PROJECT_KEY:
        return _key_drifts(wanted, current)
    found = []
    if current.role_ids != frozenset(wanted.role_ids):
        found.append((Reason.DRIFT_ROLES, shown_change("roles", current.role_ids, wanted.role_ids)))
    permissions = current.permission_ids
    # None: the API did not list permissions, so they cannot be said to differ.
    if permissions is not None and permissions != frozenset(wanted.permission_ids):
        change = shown_change("permissions", permissions, wanted.permission_ids)
        found.append((Reason.DRIFT_PERMISSIONS, change))
    # A service_id the manifest does not name is the API's to fill in (it is computed).
    if wanted.service_id is not None and current.service_id != wanted.service_id:
        change = shown_change("service_id", [current.service_id or ""], [wanted.service_id])
        found.append((Reason.DRIFT_SERVICE_ID, change))
    return found


def _key_drifts(wanted: DesiredCredential, current: RemoteCredential) -> list[tuple[Reason, str]]:
    """How a live project key differs from the manifest: what a PATCH cannot change first."""
    has = {"API": current.api_client_id is not None, "Kafka": current.kafka is not None}
    wants = {"API": wanted.wants_api, "Kafka": wanted.kafka is not None}
    found: list[tuple[Reason, str]] = []
    removed = [name for name in has if has[name] and not wants[name]]
    if removed:
        found.append((Reason.DRIFT_ACCESS, f"removes {' and '.join(removed)} access"))
    if wanted.kafka is not None and current.kafka is not None:
        found.extend(_kafka_drifts(wanted.owned_key, wanted.kafka, current.kafka))
    permissions = current.permission_ids
    if (
        has["API"]
        and wanted.wants_api
        and _uses_permissions(current) != bool(wanted.permission_ids)
    ):
        # Roles and permissions are two kinds of API access: one never becomes the other.
        found.append(
            (Reason.DRIFT_PERMISSIONS, "roles and permissions: one cannot become the other")
        )
    elif has["API"] and permissions is not None and permissions != frozenset(wanted.permission_ids):
        change = shown_change("permissions", permissions, wanted.permission_ids)
        found.append((Reason.DRIFT_PERMISSIONS, change))
    # No service_id: a create of a key cannot send one (the API's body has none), so the one the
    # API fills in is the key's, whatever the service names.
    added = [name for name in has if wants[name] and not has[name]]
    if added:
        found.append((Reason.ACCESS_ADDED, f"adds {' and '.join(added)} access"))
    if (
        has["API"]
        and wanted.role_ids
        and current.role_ids
        and current.role_ids != frozenset(wanted.role_ids)
    ):
        found.append((Reason.DRIFT_ROLES, shown_change("roles", current.role_ids, wanted.role_ids)))
    if current.name is not None and current.name != wanted.key:
        found.append((Reason.DRIFT_NAME, f"name {current.name} -> {wanted.key}"))
    if current.description != wanted.remote_description:
        found.append((Reason.DRIFT_DESCRIPTION, "description"))
    live_mcp, wanted_mcp = current.mcp or McpScope(), wanted.mcp or McpScope()
    if wanted_mcp.profile is None:  # none asked: the key's own (one the API filled in) stays
        wanted_mcp = dataclasses.replace(wanted_mcp, profile=live_mcp.profile)
    if live_mcp != wanted_mcp:
        found.append((Reason.DRIFT_MCP, _mcp_change(live_mcp, wanted_mcp)))
    return found


def _uses_permissions(current: RemoteCredential) -> bool:
    """Whether a key's API access is by permissions: the API lists none, so a key with API
    access and no roles has them (those its sinks' record names, when they name any)."""
    return bool(current.permission_ids) or not current.role_ids


def _kafka_drifts(
    owned_key: str, wanted: KafkaAccess, current: KafkaAccess
) -> list[tuple[Reason, str]]:
    """Kafka access on both sides: a new user (the manifest's `kafka.username` or, without one,
    the key's own, before the generation suffix) or Schema Registry replaces; ACLs and the
    allow list change in place."""
    found: list[tuple[Reason, str]] = []
    # The Kafka username is never shown: it is half of a login.
    if not same_user(owned_key, wanted.username, current.username or ""):
        found.append((Reason.DRIFT_ACCESS, "Kafka username (kafka.username changed)"))
    if wanted.schema_registry != current.schema_registry:
        change = f"schema_registry {current.schema_registry} -> {wanted.schema_registry}"
        found.append((Reason.DRIFT_ACCESS, change.lower()))
    changed = []
    if wanted.acls != current.acls:
        changed.append(shown_change("acls", map(_acl, current.acls), map(_acl, wanted.acls)))
    if wanted.allow_ips != current.allow_ips:
        changed.append(shown_change("allow_ips", current.allow_ips, wanted.allow_ips))
    if changed:
        found.append((Reason.DRIFT_KAFKA, "; ".join(changed)))
    return found


def _acl(entry: AclEntry) -> str:
    """`READ topic orders.*`: one ACL as people read it (`*`: a prefix)."""
    prefix = "*" if entry.pattern == "PREFIXED" else ""
    return f"{entry.operation} {entry.resource.lower()} {entry.name}{prefix}"


def _mcp_change(current: McpScope | None, wanted: McpScope | None) -> str:
    def shown(scope: McpScope | None) -> str:
        scope = scope or McpScope()
        parts = [f"profile {scope.profile or 'none'}"]
        parts += [f"allow {','.join(sorted(scope.allow))}"] * bool(scope.allow)
        parts += [f"block {','.join(sorted(scope.block))}"] * bool(scope.block)
        return " ".join(parts)

    return f"mcp {shown(current)} -> {shown(wanted)}"


def shown_change(name: str, old: Iterable[str], new: Iterable[str]) -> str:
    def shown(values: Iterable[str]) -> str:
        return ",".join(sorted(v for v in values if v)) or "none"

    return f"{name} {shown(old)} -> {shown(new)}"
