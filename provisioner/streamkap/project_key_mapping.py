"""Between the model and the shapes of `/project-keys`: pure translations, no calls.

A listed or read key becomes a `RemoteCredential`; a `DesiredCredential` becomes a create's body,
or the PATCH that brings a live key to it (only what differs), or `Unpatchable` when no PATCH
can (the planner replaces instead); what the API made is compared with what was asked.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from typing import Any

from provisioner.kafka_usernames import same_user
from provisioner.model import (
    AclEntry,
    CredentialKind,
    DesiredCredential,
    KafkaAccess,
    KafkaLogin,
    McpScope,
    RemoteCredential,
    State,
    owner_key,
)
from provisioner.streamkap import project_key_answers as answers
from provisioner.streamkap.project_key_answers import (
    KafkaAcl,
    ProjectKeyDetail,
    ProjectKeySummary,
)
from provisioner.streamkap.project_key_bodies import KafkaConfig, NewProjectKey, ProjectKeyChange

#: The documented statuses; any other counts as active (the list is not exhaustive, and a key
#: the provisioner cannot read as busy is one it may use).
STATES = {
    answers.CREATING: State.CREATING,
    answers.ACTIVE: State.ACTIVE,
    answers.DELETING: State.DELETING,
    answers.DELETE_FAILED: State.DELETE_FAILED,
}


class Unpatchable(ValueError):
    """A difference no PATCH can make (a removed access, permissions, the Kafka username)."""


# --- from the API --------------------------------------------------------------------------


def state_of(status: str) -> State:
    return STATES.get(status, State.ACTIVE)


def remote_of(key: ProjectKeySummary) -> RemoteCredential:
    """A listed key (its Kafka setup unknown, but for its username) or a read one."""
    return RemoteCredential(
        client_id=key.id,
        description=key.description,
        role_ids=key.role_ids,
        service_id=key.service_id,
        created_at=key.created_at,
        permission_ids=None,  # the API does not show a key's permissions
        kind=CredentialKind.PROJECT_KEY,
        state=state_of(key.status),
        last_used_at=key.last_used_at,
        name=key.name,
        api_client_id=key.api_client_id,
        kafka=_kafka_of(key),
        mcp=_mcp_of(key),
    )


def acl_entries(acls: Iterable[KafkaAcl]) -> frozenset[AclEntry]:
    """The API's ACLs as the model holds them (upper case, as the API spells them)."""
    return frozenset(
        AclEntry(
            resource=acl.resource.upper(),
            name=acl.topic_name,
            pattern=acl.resource_pattern_type.upper(),
            operation=acl.operation.upper(),
        )
        for acl in acls
    )


def normalised_ips(ips: Iterable[str]) -> frozenset[str]:
    """Networks as `ipaddress` writes them (`10.0.0.0/8`); one that does not parse is kept as
    written, so it shows as drift instead of failing the listing."""
    found = set()
    for ip in ips:
        try:
            found.add(str(ipaddress.ip_network(ip.strip(), strict=False)))
        except ValueError:
            found.add(ip)
    return frozenset(found)


def kafka_login(access: answers.KafkaAccess) -> KafkaLogin:
    """The Kafka login a create (or a PATCH adding Kafka access) showed, once."""
    return KafkaLogin(
        username=access.username,
        password=access.password,
        bootstrap_servers=access.bootstrap_servers,
        security_protocol=access.security_protocol,
        sasl_mechanism=access.sasl_mechanism,
        schema_registry_url=access.schema_registry_url,
    )


def _kafka_of(key: ProjectKeySummary) -> KafkaAccess | None:
    if key.kafka_username is None:
        return None
    if not isinstance(key, ProjectKeyDetail):  # a listing shows only the username
        return KafkaAccess(username=key.kafka_username)
    return KafkaAccess(
        acls=acl_entries(key.kafka_acls),
        allow_ips=normalised_ips(key.whitelist_ips),
        schema_registry=bool(key.schema_proxy_endpoint),
        username=key.kafka_username,
    )


def _mcp_of(key: ProjectKeySummary) -> McpScope | None:
    if key.tool_profile is None and not key.allowed_tools and not key.blocked_tools:
        return None
    return McpScope(key.tool_profile, frozenset(key.allowed_tools), frozenset(key.blocked_tools))


# --- to the API ----------------------------------------------------------------------------


def new_key(desired: DesiredCredential, kafka: KafkaConfig | None) -> NewProjectKey:
    """The create of a desired key; its `name` on the API is the key `service/credential`."""
    mcp = desired.mcp or McpScope()
    return NewProjectKey(
        name=desired.key,
        description=desired.remote_description,
        role_ids=() if desired.permission_ids else tuple(desired.role_ids),
        permission_ids=tuple(desired.permission_ids),
        kafka=kafka,
        tool_profile=mcp.profile,
        allowed_tools=tuple(sorted(mcp.allow)),
        blocked_tools=tuple(sorted(mcp.block)),
    )


def kafka_config(access: KafkaAccess, config: KafkaConfig) -> KafkaConfig:
    """`config` (its username and password) with the ACLs, allow list and Schema Registry asked."""
    return KafkaConfig(
        username=config.username,
        password=config.password,
        acls=api_acls(access.acls),
        whitelist_ips=tuple(sorted(normalised_ips(access.allow_ips))),
        schema_registry=access.schema_registry,
    )


def api_acls(entries: Iterable[AclEntry]) -> tuple[KafkaAcl, ...]:
    return tuple(
        KafkaAcl(entry.name, entry.operation, entry.pattern, entry.resource)
        for entry in sorted(entries)
    )


def change_for(
    desired: DesiredCredential, key: ProjectKeyDetail, new_kafka: Callable[[], KafkaConfig]
) -> ProjectKeyChange | None:
    """The PATCH that brings `key` to `desired`, holding only what differs; None: nothing does.
    `new_kafka()` is called only when Kafka access is added. Unpatchable: only a replace can."""
    changes = {
        **_names(desired, key),
        **_api(desired, key),
        **_kafka(desired, key, new_kafka),
        **_tools(desired, key),
    }
    return ProjectKeyChange(**changes) if changes else None


def _names(desired: DesiredCredential, key: ProjectKeyDetail) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if key.name != desired.key:
        changes["name"] = desired.key
    if key.description != desired.remote_description:
        changes["description"] = desired.remote_description
    return changes


def _api(desired: DesiredCredential, key: ProjectKeyDetail) -> dict[str, Any]:
    has_api = key.api_client_id is not None
    if not desired.wants_api:
        if has_api:
            raise Unpatchable("API access cannot be removed from a key")
        return {}
    if not has_api:  # added: the answer must carry new_api_credentials
        if desired.permission_ids:
            return {"permission_ids": tuple(desired.permission_ids), "adds_api": True}
        return {"role_ids": tuple(desired.role_ids), "adds_api": True}
    # The API shows no permissions: a key with API access and no roles has permissions.
    if desired.permission_ids:
        if key.role_ids:
            raise Unpatchable("a key's roles cannot become permissions")
        return {}  # the permissions themselves cannot be compared, nor changed
    if not key.role_ids:
        raise Unpatchable("a key's permissions cannot become roles")
    if frozenset(desired.role_ids) != key.role_ids:
        return {"role_ids": tuple(desired.role_ids)}
    return {}


def _kafka(
    desired: DesiredCredential, key: ProjectKeyDetail, new_kafka: Callable[[], KafkaConfig]
) -> dict[str, Any]:
    wanted = desired.kafka
    if wanted is None:
        if key.kafka_username is not None:
            raise Unpatchable("Kafka access cannot be removed from a key")
        return {}
    if key.kafka_username is None:  # added: the answer must carry new_kafka_credentials
        return {"kafka": kafka_config(wanted, new_kafka())}
    if not same_user(desired.owned_key, wanted.username, key.kafka_username):
        raise Unpatchable("a key's Kafka username cannot change")
    if wanted.schema_registry != bool(key.schema_proxy_endpoint):
        raise Unpatchable("Schema Registry access cannot change on a key")
    changes: dict[str, Any] = {}
    if wanted.acls != acl_entries(key.kafka_acls):
        changes["kafka_acls"] = api_acls(wanted.acls)
    wanted_ips = normalised_ips(wanted.allow_ips)
    if wanted_ips != normalised_ips(key.whitelist_ips):
        changes["whitelist_ips"] = tuple(sorted(wanted_ips))
    return changes


def _tools(desired: DesiredCredential, key: ProjectKeyDetail) -> dict[str, Any]:
    wanted, live = desired.mcp or McpScope(), _mcp_of(key) or McpScope()
    changes: dict[str, Any] = {}
    # No profile asked: whatever the key has (one the API filled in, say) is accepted, as a
    # service_id the manifest does not name is; a PATCH could not clear it anyway.
    if wanted.profile is not None and wanted.profile != live.profile:
        changes["tool_profile"] = wanted.profile
    if wanted.allow != live.allow:
        changes["allowed_tools"] = tuple(sorted(wanted.allow))
    if wanted.block != live.block:
        changes["blocked_tools"] = tuple(sorted(wanted.block))
    return changes


# --- what was made -------------------------------------------------------------------------


def differences(
    desired: DesiredCredential, key: ProjectKeyDetail, *, roles: bool = True
) -> list[str]:
    """What the API made (or changed) otherwise than asked: the name, the marker, the roles."""
    found = []
    if key.name != desired.key:
        found.append(f"the name {desired.key!r} became {key.name!r}")
    if owner_key(key.description) != desired.owned_key:
        found.append("the description lost its ownership marker")
    asked_roles = roles and desired.role_ids and not desired.permission_ids
    if asked_roles and key.role_ids != frozenset(desired.role_ids):
        asked, got = sorted(desired.role_ids), sorted(key.role_ids)
        found.append(f"roles {', '.join(asked)} became {', '.join(got) or 'none'}")
    if desired.wants_api and key.api_client_id is None:
        found.append("it has no API access")
    if desired.kafka is not None and key.kafka_username is None:
        found.append("it has no Kafka access")
    return found
