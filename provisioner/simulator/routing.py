"""What every route of the simulated Streamkap API shares: entering a call (latency, refusals,
the bearer token and the permission it needs), parsing a body as FastAPI would, a dropped
connection, the error answers, and the objects more than one route returns."""

from __future__ import annotations

import json
from collections.abc import Container
from typing import Any, TypeVar

import anyio
import httpx
from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from provisioner.simulator.faults import DROP_EXTENSION, SimulatedConnectionDrop
from provisioner.simulator.state import Role, SimulatorState

#: The stars between the first and last 3 characters of a listed secret (`abc******xyz`).
MASK_STARS = "******"


_Body = TypeVar("_Body", bound=BaseModel)


class Unprocessable(Exception):
    """A request body that fails validation; answered as a 422 `HTTPValidationError`."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(errors)
        self.errors = errors


def get_state(app: Starlette) -> SimulatorState:
    """The `SimulatorState` an app made by `create_app` serves."""
    state: SimulatorState = app.state.sim
    return state


def sim_of(request: Request) -> SimulatorState:
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


def mask_secret(secret: str) -> str:
    """A secret as listings show it: its first and last 3 characters around six stars."""
    if len(secret) <= 6:  # too short to show any of it
        return MASK_STARS
    return f"{secret[:3]}{MASK_STARS}{secret[-3:]}"


async def enter(
    request: Request, *, token_call: bool = False, permission: str | None = None
) -> SimulatorState:
    """Apply latency and refusal faults, then (except for token calls) check the bearer token
    and that its login holds `permission`."""
    sim = sim_of(request)
    if sim.faults.latency > 0:
        await anyio.sleep(sim.faults.latency)
    refusal = sim.refusal(token_call=token_call)
    if refusal is not None:
        raise HTTPException(refusal.status, refusal.detail, refusal.headers)
    if token_call:
        return sim
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    principal = sim.principal_of(token.strip()) if scheme.lower() == "bearer" else None
    if principal is None:
        raise HTTPException(401, "Not authenticated", {"WWW-Authenticate": "Bearer"})
    if permission is not None and permission not in sim.permissions_of(principal):
        # Like the real API, the answer does not say which permission is missing.
        raise HTTPException(403, "Forbidden: insufficient permissions")
    return sim


async def parse(request: Request, model: type[_Body]) -> _Body:
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


class DroppedConnection(Response):
    """Answers nothing: the server closes the connection, or in-process the app raises."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        hook = (scope.get("extensions") or {}).get(DROP_EXTENSION)
        if hook is None:
            request = httpx.Request(scope["method"], str(Request(scope).url))
            message = "Server disconnected without sending a response."
            raise SimulatedConnectionDrop(message, request=request)
        await hook["drop"]()


def unknown_ids(
    field: str, given: list[str] | None, known: Container[str] | None
) -> list[dict[str, Any]]:
    """422 errors for the ids in `given` that `known` lacks (`known` None: any id is known)."""
    label = "role" if field == "role_ids" else "permission"
    return [
        {"type": "value_error", "loc": ["body", field, i], "msg": f"Unknown {label} id {x!r}"}
        for i, x in enumerate(given or [])
        if known is not None and x not in known
    ]


def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"detail": exc.detail}, exc.status_code, headers=exc.headers)


def unprocessable(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Unprocessable)
    return JSONResponse({"detail": exc.errors}, 422)
