"""The simulated Streamkap API: Starlette routes over a `SimulatorState`, with fault injection.

It behaves as Streamkap documents its API: 201 create answers with the only unmasked secret,
listings with exactly the documented fields (no `permission_ids`, secrets like `abc******xyz`),
the caller's service id filled in, roles xor permissions, `PATCH`, and 403 without permission.
The `/project-keys` routes are in `project_keys`; what every route shares is in `routing`.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from provisioner.simulator import project_keys
from provisioner.simulator.calllog import CallLog
from provisioner.simulator.faults import (
    BadCreateAnswer,
    BadListAnswer,
    BadRolesAnswer,
    BadTokenAnswer,
)
from provisioner.simulator.routing import DroppedConnection as _DroppedConnection
from provisioner.simulator.routing import Unprocessable, get_state, mask_secret, role_json
from provisioner.simulator.routing import enter as _enter
from provisioner.simulator.routing import http_error as _http_error
from provisioner.simulator.routing import parse as _parse
from provisioner.simulator.routing import sim_of as _sim
from provisioner.simulator.routing import unknown_ids as _unknown_ids
from provisioner.simulator.routing import unprocessable as _unprocessable
from provisioner.simulator.state import (
    CREDENTIALS_PATH,
    DELETE_CREDENTIALS,
    EXTRA_ROLE_ID,
    KEEP,
    READ_CREDENTIALS,
    READ_ROLES,
    WRITE_CREDENTIALS,
    CredentialRecord,
    SimulatorState,
)

_NonEmptyStrings = Annotated[list[str], Field(min_length=1)]


class AccessTokenReq(BaseModel):
    """Body of `POST /auth/access-token`."""

    model_config = ConfigDict(extra="allow")
    client_id: str
    secret: str


class RefreshTokenReq(BaseModel):
    """Body of `POST /auth/access-token/refresh`."""

    model_config = ConfigDict(extra="allow")
    refresh_token: str


class ClientCredentialCreateReq(BaseModel):
    """Body of `POST /auth/client-credentials`, exactly as the seed schema states it."""

    model_config = ConfigDict(extra="allow")
    description: str | None = None
    service_id: str | None = None
    role_ids: _NonEmptyStrings | None = None
    permission_ids: _NonEmptyStrings | None = None


class ClientCredentialUpdateReq(BaseModel):
    """Body of `PATCH /auth/client-credentials/{client_id}`; a `service_id` in it is refused."""

    model_config = ConfigDict(extra="allow")
    description: str | None = None
    role_ids: _NonEmptyStrings | None = None


def credential_json(
    sim: SimulatorState, record: CredentialRecord, *, reveal_secret: bool
) -> dict[str, Any]:
    """The API's `ClientCredential` object, exactly its documented fields; the secret masked
    unless told."""
    return {
        "created_by_user": None if record.created_by is None else dict(record.created_by),
        "client_id": record.client_id,
        "description": record.description,
        "created_at": record.created_at.isoformat(),
        "roles": [role_json(sim.roles[role]) for role in record.role_ids if role in sim.roles],
        "service_id": record.service_id,
        "secret": record.secret if reveal_secret else mask_secret(record.secret),
    }


async def access_token(request: Request) -> Response:
    """POST /auth/access-token: log in with a client id and secret."""
    sim = await _enter(request, token_call=True)
    body = await _parse(request, AccessTokenReq)
    answer = sim.login(body.client_id, body.secret)
    if answer is None:
        raise HTTPException(401, "Invalid client_id or secret")
    return _token_answer(answer, sim.faults.bad_token_answer)


async def refresh_token(request: Request) -> Response:
    """POST /auth/access-token/refresh: trade a refresh token for a new access token."""
    sim = await _enter(request, token_call=True)
    body = await _parse(request, RefreshTokenReq)
    answer = sim.refresh(body.refresh_token)
    if answer is None:
        raise HTTPException(401, "Invalid refresh token")
    return _token_answer(answer, sim.faults.bad_token_answer)


async def list_roles(request: Request) -> Response:
    """GET /auth/roles (needs `fe.secure.read.roles`)."""
    sim = await _enter(request, permission=READ_ROLES)
    roles = [role_json(role) for role in sim.roles.values()]
    return _roles_answer(roles, sim.faults.bad_roles_answer)


async def list_credentials(request: Request) -> Response:
    """GET /auth/client-credentials, secrets masked (needs `fe.secure.read.tenantApiTokens`)."""
    sim = await _enter(request, permission=READ_CREDENTIALS)
    items = [credential_json(sim, c, reveal_secret=False) for c in sim.live()]
    return _list_answer(items, sim.faults.bad_list_answer)


async def create_credential(request: Request) -> Response:
    """POST /auth/client-credentials: 201 with the real secret, the only time it is shown
    (needs `fe.secure.write.tenantApiTokens`)."""
    sim = await _enter(request, permission=WRITE_CREDENTIALS)
    body = await _parse(request, ClientCredentialCreateReq)
    errors = _access_errors(sim, body)
    errors += _unknown_ids("role_ids", body.role_ids, sim.roles)
    errors += _unknown_ids("permission_ids", body.permission_ids, sim.permissions)
    if errors:
        raise Unprocessable(errors)
    bad = sim.bad_create_answer()
    role_ids = list(body.role_ids or [])
    description = body.description
    if bad == "extra_role":  # the API adds a role of its own, and keeps it
        role_ids += [r for r in _extra_role(sim) if r not in role_ids][:1]
    if bad == "description_cut" and description:  # a column too short: the end is lost
        description = description[: len(description) // 2]
    fill = sim.service_id if sim.fill_service_id else None
    record = sim.add_credential(
        description=description,
        role_ids=role_ids,
        service_id=body.service_id if body.service_id is not None else fill,
        permission_ids=body.permission_ids or (),
    )
    outcome = sim.after_create()  # the credential is committed whatever the outcome
    if outcome == "drop":
        return _DroppedConnection()
    if outcome == "error":
        raise HTTPException(500, "Internal Server Error")
    return _create_answer(credential_json(sim, record, reveal_secret=True), bad)


async def update_credential(request: Request) -> Response:
    """PATCH /auth/client-credentials/{client_id}: change description and roles in place; 200
    with the secret masked (needs `fe.secure.write.tenantApiTokens`). 405 when switched off."""
    if not _sim(request).patch_supported:
        # As if the route did not exist: the router answers before any handler or fault.
        raise HTTPException(405, "Method Not Allowed", {"Allow": "DELETE"})
    sim = await _enter(request, permission=WRITE_CREDENTIALS)
    body = await _parse(request, ClientCredentialUpdateReq)
    errors = _unknown_ids("role_ids", body.role_ids, sim.roles)
    if "service_id" in (body.model_extra or {}):
        service_id = (body.model_extra or {})["service_id"]
        message = "Extra inputs are not permitted"
        forbidden = {"loc": ["body", "service_id"], "msg": message, "input": service_id}
        errors.insert(0, {"type": "extra_forbidden", **forbidden})
    if errors:
        raise Unprocessable(errors)
    client_id = request.path_params["client_id"]
    given = body.model_fields_set
    record = sim.update_credential(
        client_id,
        description=body.description if "description" in given else KEEP,
        role_ids=body.role_ids,
    )
    if record is None:
        raise HTTPException(404, f"Client credential {client_id!r} not found")
    return JSONResponse(credential_json(sim, record, reveal_secret=False))


async def delete_credential(request: Request) -> Response:
    """DELETE /auth/client-credentials/{client_id}: 200 with an empty body; 404 when gone
    (needs `fe.secure.delete.tenantApiTokens`)."""
    sim = await _enter(request, permission=DELETE_CREDENTIALS)
    client_id = request.path_params["client_id"]
    if not sim.delete_credential(client_id):
        raise HTTPException(404, f"Client credential {client_id!r} not found")
    return Response(status_code=200)


# --- checks the backend makes beyond the schema ---------------------------------------------


def _access_errors(sim: SimulatorState, body: ClientCredentialCreateReq) -> list[dict[str, Any]]:
    """A 422 error (pydantic's `value_error` shape) unless exactly one of roles and permissions
    is given; none when `roles_xor_permissions` is off."""
    if not sim.roles_xor_permissions:
        return []
    if body.role_ids is not None and body.permission_ids is not None:
        problem = "role_ids and permission_ids are mutually exclusive"
    elif body.role_ids is None and body.permission_ids is None:
        problem = "one of role_ids or permission_ids is required"
    else:
        return []
    return [
        {
            "type": "value_error",
            "loc": ["body"],
            "msg": f"Value error, {problem}",
            "input": body.model_dump(),
            "ctx": {"error": problem},
        }
    ]


def _extra_role(sim: SimulatorState) -> list[str]:
    """The roles the `extra_role` fault may add, the usual default first."""
    preferred = [EXTRA_ROLE_ID] if EXTRA_ROLE_ID in sim.roles else []
    return preferred + [role for role in sim.roles if role != EXTRA_ROLE_ID]


# --- hostile answers (faults) ---------------------------------------------------------------


def _cut_json(body: Any, status: int) -> Response:
    """The JSON of `body` cut in the middle, as a proxy or a crash would leave it."""
    text = json.dumps(body)
    return Response(text[: len(text) // 2], status, media_type="application/json")


def _create_answer(answer: dict[str, Any], bad: BadCreateAnswer | None) -> Response:
    """The 201 create answer, damaged as `bad` says (the credential exists all the same)."""
    if bad == "truncated_json":
        return _cut_json(answer, 201)
    if bad == "secret_missing":
        del answer["secret"]
    elif bad == "secret_null":
        answer["secret"] = None
    elif bad == "secret_empty":
        answer["secret"] = ""
    elif bad == "secret_not_string":
        answer["secret"] = 123456789
    elif bad == "secret_masked":
        answer["secret"] = mask_secret(answer["secret"])
    elif bad == "client_id_missing":
        del answer["client_id"]
    return JSONResponse(answer, 201)


def _list_answer(items: list[dict[str, Any]], bad: BadListAnswer | None) -> Response:
    """The 200 credentials listing, damaged as `bad` says."""
    if bad == "truncated_json":
        return _cut_json(items, 200)
    if bad == "duplicate_entries":
        return JSONResponse([copy for item in items for copy in (item, dict(item))])
    if bad == "not_a_list":
        return JSONResponse({"items": items})
    if bad == "missing_fields":
        return JSONResponse([_without(item, "client_id", "roles") for item in items])
    return JSONResponse(items)


def _roles_answer(roles: list[dict[str, Any]], bad: BadRolesAnswer | None) -> Response:
    """The 200 roles listing, damaged as `bad` says."""
    if bad == "truncated_json":
        return _cut_json(roles, 200)
    if bad == "not_a_list":
        return JSONResponse({"roles": roles})
    if bad == "missing_fields":
        return JSONResponse([_without(role, "id") for role in roles])
    return JSONResponse(roles)


def _token_answer(answer: dict[str, Any], bad: BadTokenAnswer | None) -> Response:
    """The 200 token answer, damaged as `bad` says (the token issued still works)."""
    if bad == "truncated_json":
        return _cut_json(answer, 200)
    if bad == "not_an_object":
        return JSONResponse([answer])
    if bad == "access_token_missing":
        return JSONResponse(_without(answer, "accessToken"))
    if bad == "expires_in_missing":
        return JSONResponse(_without(answer, "expiresIn"))
    if bad == "expires_in_zero":
        return JSONResponse({**answer, "expiresIn": 0})
    if bad == "expires_in_negative":
        return JSONResponse({**answer, "expiresIn": -1})
    return JSONResponse(answer)


def _without(item: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {key: value for key, value in item.items() if key not in keys}


ROUTES = [
    Route("/auth/access-token", access_token, methods=["POST"]),
    Route("/auth/access-token/refresh", refresh_token, methods=["POST"]),
    Route("/auth/roles", list_roles, methods=["GET"]),
    Route(CREDENTIALS_PATH, list_credentials, methods=["GET"]),
    Route(CREDENTIALS_PATH, create_credential, methods=["POST"]),
    Route(CREDENTIALS_PATH + "/{client_id}", delete_credential, methods=["DELETE"]),
    Route(CREDENTIALS_PATH + "/{client_id}", update_credential, methods=["PATCH"]),
    *project_keys.ROUTES,
]


def create_app(state: SimulatorState | None = None) -> Starlette:
    """A Starlette app serving `state` (a fresh default one if None) as `app.state.sim`."""
    app = Starlette(
        routes=ROUTES,
        middleware=[Middleware(CallLog, record=_record_call)],
        exception_handlers={HTTPException: _http_error, Unprocessable: _unprocessable},
    )
    app.state.sim = state if state is not None else SimulatorState()
    return app


def _record_call(app: Starlette, method: str, path: str, status: int) -> None:
    get_state(app).record_call(method, path, status)
