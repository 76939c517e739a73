"""The simulated `/project-keys` routes, as Streamkap documents them (docs/api.md).

A create answers 201 with the one-time credential file (a generated API client credential that
logs in at `/auth/access-token`, and a Kafka user with the caller's password); later answers
never show a secret. PATCH changes what the docs say it may, adds API or Kafka access with their
new credentials, refuses to change permissions, and answers 400 while the key is busy. Deletion
is asynchronous. Statuses move on the simulator's clock (`project_keys_state`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from provisioner.simulator.project_key_requests import (
    KafkaAclReq,
    KafkaConfigReq,
    ProjectKeyCreateReq,
    ProjectKeyUpdateReq,
)
from provisioner.simulator.project_keys_state import (
    BUSY,
    ProjectKeyRecord,
    UsernameTaken,
    new_api_access,
)
from provisioner.simulator.routing import (
    DroppedConnection,
    Unprocessable,
    enter,
    mask_secret,
    parse,
    role_json,
    unknown_ids,
)
from provisioner.simulator.state import (
    DELETE_PROJECT_KEYS,
    READ_PROJECT_KEYS,
    WRITE_PROJECT_KEYS,
    SimulatorState,
)

PROJECT_KEYS_PATH = "/project-keys"
BOOTSTRAP_SERVERS = "kafka.simulator.invalid:9094"
SCHEMA_REGISTRY_URL = "https://schema-registry.simulator.invalid"
TOKEN_TTL_SECONDS = 3600


# --- answers ------------------------------------------------------------------------------------


def summary_json(sim: SimulatorState, key: ProjectKeyRecord) -> dict[str, Any]:
    """A key as the listing shows it: no secret but the masked API one."""
    return {
        "id": key.id,
        "name": key.name,
        "service_id": key.service_id,
        "status": key.status,
        "description": key.description,
        "created_at": key.created_at.isoformat(),
        "created_by_user": None if key.created_by is None else dict(key.created_by),
        "api_client_id": key.api_client_id,
        "api_client_id_masked_secret": mask_secret(key.api_secret) if key.api_secret else None,
        "kafka_username": key.kafka_username,
        "roles": [role_json(sim.roles[role]) for role in key.role_ids if role in sim.roles],
        "last_used_at": None if key.last_used_at is None else key.last_used_at.isoformat(),
        "tool_profile": key.tool_profile,
        "allowed_tools": list(key.allowed_tools),
        "blocked_tools": list(key.blocked_tools),
    }


def detail_json(sim: SimulatorState, key: ProjectKeyRecord) -> dict[str, Any]:
    """A key as `GET /project-keys/{id}` shows it: the summary and its Kafka setup."""
    return {
        **summary_json(sim, key),
        "kafka_acls": [dict(acl) for acl in key.kafka_acls],
        "whitelist_ips": key.whitelist_ips,
        "kafka_proxy_endpoint": BOOTSTRAP_SERVERS if key.has_kafka else None,
        "schema_proxy_endpoint": SCHEMA_REGISTRY_URL if key.schema_registry else None,
        "token_ttl_seconds": TOKEN_TTL_SECONDS if key.has_api else None,
    }


def api_json(sim: SimulatorState, key: ProjectKeyRecord, request: Request) -> dict[str, Any]:
    """The `api` part of the one-time file (and `new_api_credentials`)."""
    base = str(request.base_url).rstrip("/")
    return {
        "client_id": key.api_client_id,
        "client_secret": key.api_secret,
        "token_endpoint": f"{base}/auth/access-token",
        "api_url": base,
        "roles": [role_json(sim.roles[role]) for role in key.role_ids if role in sim.roles],
    }


def kafka_json(key: ProjectKeyRecord) -> dict[str, Any]:
    """The `kafka` part of the one-time file (and `new_kafka_credentials`)."""
    return {
        "username": key.kafka_username,
        "password": key.kafka_password,
        "bootstrap_servers": BOOTSTRAP_SERVERS,
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "PLAIN",
        "schema_registry_url": SCHEMA_REGISTRY_URL if key.schema_registry else None,
    }


def file_json(sim: SimulatorState, key: ProjectKeyRecord, request: Request) -> dict[str, Any]:
    """The one-time credential file a create answers with."""
    return {
        "project_key_id": key.id,
        "project": key.service_id,
        "created_at": key.created_at.isoformat(),
        "type": "streamkap_project_key",
        "api": api_json(sim, key, request) if key.has_api else None,
        "kafka": kafka_json(key) if key.has_kafka else None,
        "kafka_acls": [dict(acl) for acl in key.kafka_acls],
        "tool_profile": key.tool_profile,
        "allowed_tools": list(key.allowed_tools),
        "blocked_tools": list(key.blocked_tools),
        "created_by": None if key.created_by is None else dict(key.created_by),
    }


# --- routes -------------------------------------------------------------------------------------


async def list_keys(request: Request) -> Response:
    """GET /project-keys: every key that exists, without secrets."""
    sim = await enter(request, permission=READ_PROJECT_KEYS)
    return JSONResponse([summary_json(sim, key) for key in sim.project_keys.live()])


async def get_key(request: Request) -> Response:
    """GET /project-keys/{id}: one key with its ACLs and allow list; 404 when there is none."""
    sim = await enter(request, permission=READ_PROJECT_KEYS)
    return JSONResponse(detail_json(sim, _key(sim, request)))


async def create_key(request: Request) -> Response:
    """POST /project-keys: 201 with the one-time credential file."""
    sim = await enter(request, permission=WRITE_PROJECT_KEYS)
    body = await parse(request, ProjectKeyCreateReq)
    _check_ids(sim, body.role_ids, body.permission_ids)
    try:
        key = sim.project_keys.add(_new_record(sim, body))
    except UsernameTaken:
        raise HTTPException(409, "Kafka username already exists") from None
    outcome = sim.after_create()  # the key is committed whatever the outcome
    if outcome == "drop":
        return DroppedConnection()
    if outcome == "error":
        raise HTTPException(500, "Internal Server Error")
    return JSONResponse(file_json(sim, key, request), 201)


async def update_key(request: Request) -> Response:
    """PATCH /project-keys/{id}: the detail, plus the credentials of an access it added."""
    sim = await enter(request, permission=WRITE_PROJECT_KEYS)
    body = await parse(request, ProjectKeyUpdateReq)
    _check_ids(sim, body.role_ids, body.permission_ids)
    old = _key(sim, request)
    if old.status in BUSY:
        raise HTTPException(400, f"Project key is {old.status}: it cannot be changed now")
    _refuse_impossible(old, body)
    try:
        sim.project_keys.update(old.id, lambda key: _changed(key, body))
    except UsernameTaken:
        raise HTTPException(409, "Kafka username already exists") from None
    new = _key(sim, request)
    answer = detail_json(sim, new)
    if new.has_api and not old.has_api:
        answer["new_api_credentials"] = api_json(sim, new, request)
    if new.has_kafka and not old.has_kafka:
        answer["new_kafka_credentials"] = kafka_json(new)
    return JSONResponse(answer)


async def delete_key(request: Request) -> Response:
    """DELETE /project-keys/{id}: 202, the key `deleting`; 404 when there is none."""
    sim = await enter(request, permission=DELETE_PROJECT_KEYS)
    key_id = request.path_params["key_id"]
    if not sim.project_keys.delete(key_id):
        raise HTTPException(404, f"Project key {key_id!r} not found")
    return Response(status_code=202)


# --- rules --------------------------------------------------------------------------------------


def _key(sim: SimulatorState, request: Request) -> ProjectKeyRecord:
    key_id = request.path_params["key_id"]
    key = sim.project_keys.get(key_id)
    if key is None:
        raise HTTPException(404, f"Project key {key_id!r} not found")
    return key


def _check_ids(
    sim: SimulatorState, role_ids: list[str] | None, permission_ids: list[str] | None
) -> None:
    errors = unknown_ids("role_ids", role_ids, sim.roles)
    errors += unknown_ids("permission_ids", permission_ids, sim.permissions)
    if errors:
        raise Unprocessable(errors)


def _new_record(sim: SimulatorState, body: ProjectKeyCreateReq) -> ProjectKeyRecord:
    """The key a create asks for (id, status and times are the store's)."""
    record = ProjectKeyRecord(
        id="",
        name=body.name,
        description=body.description,
        service_id=sim.service_id,
        status="",
        created_at=sim.now(),
        tool_profile=body.tool_profile,
        allowed_tools=tuple(body.allowed_tools or ()),
        blocked_tools=tuple(body.blocked_tools or ()),
        created_by=sim.user,
    )
    if body.role_ids is not None or body.permission_ids is not None:
        record = _with_api(record, body.role_ids, body.permission_ids)
    if body.kafka_config is not None:
        record = _with_kafka(record, body.kafka_config)
    return record


def _refuse_impossible(key: ProjectKeyRecord, body: ProjectKeyUpdateReq) -> None:
    """400 for what no PATCH can do: change permissions, or Kafka settings of a key without."""
    if key.has_api and body.permission_ids is not None:
        raise HTTPException(400, "Fine-grained permissions cannot be changed after creation")
    if key.has_api and body.role_ids is not None and key.permission_ids:
        raise HTTPException(400, "A key with fine-grained permissions cannot be given roles")
    if key.has_kafka and body.kafka_config is not None:
        raise HTTPException(400, "The key has Kafka access: change kafka_acls or whitelist_ips")
    kafka_fields = (body.kafka_acls, body.whitelist_ips, body.kafka_password)
    if not key.has_kafka and any(value is not None for value in kafka_fields):
        raise HTTPException(400, "The key has no Kafka access: send kafka_config to add it")


def _changed(key: ProjectKeyRecord, body: ProjectKeyUpdateReq) -> ProjectKeyRecord:
    """The key with the PATCH applied (its checks passed)."""
    given = body.model_fields_set
    if "name" in given and body.name is not None:
        key = replace(key, name=body.name)
    if "description" in given:
        key = replace(key, description=body.description)
    if body.role_ids is not None or body.permission_ids is not None:
        key = _with_api(key, body.role_ids, body.permission_ids)
    if body.kafka_config is not None:
        key = _with_kafka(key, body.kafka_config)
    if body.kafka_acls is not None:
        key = replace(key, kafka_acls=_acls(body.kafka_acls))
    if body.whitelist_ips is not None:
        key = replace(key, whitelist_ips=body.whitelist_ips or None)
    if body.kafka_password is not None:
        key = replace(key, kafka_password=body.kafka_password)
    return _with_tools(key, body)


def _with_api(
    key: ProjectKeyRecord, role_ids: list[str] | None, permission_ids: list[str] | None
) -> ProjectKeyRecord:
    """Roles changed, or API access added (a new client credential) to a key without it."""
    if key.has_api:
        return replace(key, role_ids=tuple(role_ids or ()))
    client_id, secret = new_api_access()
    return replace(
        key,
        api_client_id=client_id,
        api_secret=secret,
        role_ids=tuple(role_ids or ()),
        permission_ids=tuple(permission_ids or ()),
    )


def _with_kafka(key: ProjectKeyRecord, kafka: KafkaConfigReq) -> ProjectKeyRecord:
    return replace(
        key,
        kafka_username=kafka.username,
        kafka_password=kafka.password,
        kafka_acls=_acls(kafka.kafka_acls),
        whitelist_ips=kafka.whitelist_ips or None,
        schema_registry=kafka.is_create_schema_registry,
    )


def _with_tools(key: ProjectKeyRecord, body: ProjectKeyUpdateReq) -> ProjectKeyRecord:
    given = body.model_fields_set
    if "tool_profile" in given:
        key = replace(key, tool_profile=body.tool_profile)
    if body.allowed_tools is not None:
        key = replace(key, allowed_tools=tuple(body.allowed_tools))
    if body.blocked_tools is not None:
        key = replace(key, blocked_tools=tuple(body.blocked_tools))
    return key


def _acls(acls: list[KafkaAclReq]) -> tuple[dict[str, str], ...]:
    return tuple(
        {
            "topic_name": acl.topic_name,
            "operation": acl.operation,
            "resource_pattern_type": acl.resource_pattern_type,
            "resource": acl.resource,
        }
        for acl in acls
    )


ROUTES = [
    Route(PROJECT_KEYS_PATH, list_keys, methods=["GET"]),
    Route(PROJECT_KEYS_PATH, create_key, methods=["POST"]),
    Route(PROJECT_KEYS_PATH + "/{key_id}", get_key, methods=["GET"]),
    Route(PROJECT_KEYS_PATH + "/{key_id}", update_key, methods=["PATCH"]),
    Route(PROJECT_KEYS_PATH + "/{key_id}", delete_key, methods=["DELETE"]),
]
