"""The simulated Streamkap API: Starlette routes over a `SimulatorState`, with fault injection."""

from __future__ import annotations

import json
from typing import Annotated, Any, TypeVar

import anyio
import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from provisioner.simulator.calllog import CallLog
from provisioner.simulator.faults import DROP_EXTENSION, SimulatedConnectionDrop
from provisioner.simulator.state import (
    CREDENTIALS_PATH,
    CredentialRecord,
    Role,
    SimulatorState,
)

MASK = "****"

_Body = TypeVar("_Body", bound=BaseModel)
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


class Unprocessable(Exception):
    """A request body that fails validation; answered as a 422 `HTTPValidationError`."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(errors)
        self.errors = errors


def get_state(app: Starlette) -> SimulatorState:
    """The `SimulatorState` an app made by `create_app` serves."""
    state: SimulatorState = app.state.sim
    return state


def _sim(request: Request) -> SimulatorState:
    return get_state(request.app)


def role_json(role: Role) -> dict[str, Any]:
    """The API's `Role` object."""
    return {
        "id": role.id,
        "key": role.key,
        "name": role.name,
        "description": role.description,
        "created_at": role.created_at.isoformat(),
        "updated_at": role.updated_at.isoformat(),
        "permissions": list(role.permissions),
    }


def credential_json(
    sim: SimulatorState, record: CredentialRecord, *, reveal_secret: bool
) -> dict[str, Any]:
    """The API's `ClientCredential` object, plus `permission_ids`; the secret masked unless told."""
    return {
        "created_by_user": dict(sim.user),
        "client_id": record.client_id,
        "description": record.description,
        "created_at": record.created_at.isoformat(),
        "roles": [role_json(sim.roles[role]) for role in record.role_ids],
        "service_id": record.service_id,
        "secret": record.secret if reveal_secret else MASK,
        "permission_ids": list(record.permission_ids),
    }


async def _enter(request: Request, *, token_call: bool = False) -> SimulatorState:
    """Apply latency and refusal faults, then (except for token calls) check the bearer token."""
    sim = _sim(request)
    if sim.faults.latency > 0:
        await anyio.sleep(sim.faults.latency)
    refusal = sim.refusal(token_call=token_call)
    if refusal is not None:
        raise HTTPException(refusal.status, refusal.detail, refusal.headers)
    if not token_call:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not sim.authenticate(token.strip()):
            raise HTTPException(401, "Not authenticated", {"WWW-Authenticate": "Bearer"})
    return sim


async def _parse(request: Request, model: type[_Body]) -> _Body:
    """Parse and validate a JSON body the way FastAPI does, raising `Unprocessable`."""
    raw = (await request.body()).decode("utf-8", errors="replace")
    if not raw.strip():
        raise Unprocessable([{"type": "missing", "loc": ["body"], "msg": "Field required"}])
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        error = {"type": "json_invalid", "loc": ["body", exc.pos], "msg": "JSON decode error"}
        raise Unprocessable([{**error, "input": {}, "ctx": {"error": exc.msg}}]) from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = json.loads(exc.json(include_url=False))
        raise Unprocessable([{**e, "loc": ["body", *e["loc"]]} for e in errors]) from None


class _DroppedConnection(Response):
    """Answers nothing: the server closes the connection, or in-process the app raises."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        hook = (scope.get("extensions") or {}).get(DROP_EXTENSION)
        if hook is None:
            request = httpx.Request(scope["method"], str(Request(scope).url))
            message = "Server disconnected without sending a response."
            raise SimulatedConnectionDrop(message, request=request)
        await hook["drop"]()


async def access_token(request: Request) -> Response:
    """POST /auth/access-token: log in with a client id and secret."""
    sim = await _enter(request, token_call=True)
    body = await _parse(request, AccessTokenReq)
    answer = sim.login(body.client_id, body.secret)
    if answer is None:
        raise HTTPException(401, "Invalid client_id or secret")
    return JSONResponse(answer)


async def refresh_token(request: Request) -> Response:
    """POST /auth/access-token/refresh: trade a refresh token for a new access token."""
    sim = await _enter(request, token_call=True)
    body = await _parse(request, RefreshTokenReq)
    answer = sim.refresh(body.refresh_token)
    if answer is None:
        raise HTTPException(401, "Invalid refresh token")
    return JSONResponse(answer)


async def list_roles(request: Request) -> Response:
    """GET /auth/roles."""
    sim = await _enter(request)
    return JSONResponse([role_json(role) for role in sim.roles.values()])


async def list_credentials(request: Request) -> Response:
    """GET /auth/client-credentials, secrets masked."""
    sim = await _enter(request)
    return JSONResponse([credential_json(sim, c, reveal_secret=False) for c in sim.live()])


async def create_credential(request: Request) -> Response:
    """POST /auth/client-credentials: 201 with the real secret, the only time it is shown."""
    sim = await _enter(request)
    body = await _parse(request, ClientCredentialCreateReq)
    role_ids = body.role_ids or []
    unknown = [
        {"type": "value_error", "loc": ["body", "role_ids", i], "msg": f"Unknown role id {r!r}"}
        for i, r in enumerate(role_ids)
        if r not in sim.roles
    ]
    unknown += [
        {
            "type": "value_error",
            "loc": ["body", "permission_ids", i],
            "msg": f"Unknown permission id {p!r}",
        }
        for i, p in enumerate(body.permission_ids or [])
        if sim.permissions is not None and p not in sim.permissions
    ]
    if unknown:
        raise Unprocessable(unknown)
    record = sim.add_credential(
        description=body.description,
        role_ids=role_ids,
        service_id=body.service_id,
        permission_ids=body.permission_ids or (),
    )
    outcome = sim.after_create()  # the credential is committed whatever the outcome
    if outcome == "drop":
        return _DroppedConnection()
    if outcome == "error":
        raise HTTPException(500, "Internal Server Error")
    return JSONResponse(credential_json(sim, record, reveal_secret=True), status_code=201)


async def delete_credential(request: Request) -> Response:
    """DELETE /auth/client-credentials/{client_id}."""
    sim = await _enter(request)
    client_id = request.path_params["client_id"]
    if not sim.delete_credential(client_id):
        raise HTTPException(404, f"Client credential {client_id!r} not found")
    return JSONResponse({})


def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"detail": exc.detail}, exc.status_code, headers=exc.headers)


def _unprocessable(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Unprocessable)
    return JSONResponse({"detail": exc.errors}, 422)


ROUTES = [
    Route("/auth/access-token", access_token, methods=["POST"]),
    Route("/auth/access-token/refresh", refresh_token, methods=["POST"]),
    Route("/auth/roles", list_roles, methods=["GET"]),
    Route(CREDENTIALS_PATH, list_credentials, methods=["GET"]),
    Route(CREDENTIALS_PATH, create_credential, methods=["POST"]),
    Route(CREDENTIALS_PATH + "/{client_id}", delete_credential, methods=["DELETE"]),
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
