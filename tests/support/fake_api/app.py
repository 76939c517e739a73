"""The fake's HTTP face: a Starlette app over a `FakeApi`, every call logged as (method, path)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.fake_api.checks import Refused
from tests.support.fake_api.state import ROLES, FakeApi

#: What a route does with the fake (its lock held), the request's JSON body, a path id and the
#: API's base URL: an answer, or (status, answer).
Handler = Callable[[FakeApi, Any, str, str], Any]


def create_fake_app(fake: FakeApi) -> Starlette:
    def route(path: str, method: str, handler: Handler, *, token: bool = True) -> Route:
        return Route(path, _endpoint(fake, handler, token=token), methods=[method])

    return Starlette(
        routes=[
            route("/auth/access-token", "POST", lambda f, b, i, u: f.login(b), token=False),
            route(
                "/auth/access-token/refresh", "POST", lambda f, b, i, u: f.refresh(b), token=False
            ),
            route("/auth/roles", "GET", lambda f, b, i, u: ROLES),
            route("/auth/client-credentials", "GET", lambda f, b, i, u: f.list_credentials()),
            route(
                "/auth/client-credentials",
                "POST",
                lambda f, b, i, u: (201, f.create_credential(b)),
            ),
            route(
                "/auth/client-credentials/{id}",
                "PATCH",
                lambda f, b, i, u: f.patch_credential(i, b),
            ),
            route(
                "/auth/client-credentials/{id}",
                "DELETE",
                lambda f, b, i, u: f.delete_credential(i),  # 200, an empty body
            ),
            route("/project-keys", "GET", lambda f, b, i, u: f.project_keys.listing()),
            route("/project-keys", "POST", lambda f, b, i, u: f.project_keys.create(b, u)),
            route("/project-keys/{id}", "GET", lambda f, b, i, u: f.project_keys.detail(i)),
            route("/project-keys/{id}", "PATCH", lambda f, b, i, u: f.project_keys.patch(i, b, u)),
            route("/project-keys/{id}", "DELETE", lambda f, b, i, u: f.project_keys.delete(i)),
        ]
    )


def _endpoint(
    fake: FakeApi, handler: Handler, *, token: bool
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        raw = await request.body()
        base = str(request.base_url).rstrip("/")
        with fake.lock:
            fake.calls.append((request.method, request.url.path))
            try:
                if token:
                    fake.caller(request.headers.get("authorization"))
                body = _json(raw)
                answer = handler(fake, body, request.path_params.get("id", ""), base)
            except Refused as refused:
                return JSONResponse({"detail": refused.detail}, status_code=refused.status)
        status, value = answer if isinstance(answer, tuple) else (200, answer)
        if value is None:
            return Response(status_code=status)  # an empty body, as the notes say for DELETE
        return JSONResponse(value, status_code=status)

    return endpoint


def _json(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        problem = {"loc": ["body"], "msg": "invalid JSON", "type": "json_invalid"}
        raise Refused(422, [problem]) from None
