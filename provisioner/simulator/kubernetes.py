"""A stub of the Kubernetes API's core/v1 Secrets (ASGI), with the API server's shapes and rules.

    state = KubeState(namespaces={"payments"})   # bearer token KUBE_TOKEN
    app = create_kube_app(state)
    with serve_in_thread(app) as url: ...        # for the provisioner, kubectl-style clients
    kubeconfig(url)                              # a kubeconfig that reaches it

`provisioner simulate --kube-port P --kubeconfig FILE` serves it (every namespace exists there)
so that a user can try the `kubernetes` sink with `KUBECONFIG=FILE`.

Served under `/api/v1`: `namespaces/{ns}/secrets` (GET: list, `?labelSelector=`; POST: create)
and `namespaces/{ns}/secrets/{name}` (GET; PUT: replace, `metadata.resourceVersion` checked;
PATCH: `application/merge-patch+json`, `application/strategic-merge-patch+json` and server-side
apply `application/apply-patch+yaml` with `?fieldManager=`; DELETE with DeleteOptions
`preconditions`), `secrets` (list across namespaces) and `/version`. Errors are `Status` objects.
Every call needs `Authorization: Bearer <token>` (401 otherwise). Faults: `conflicts` makes the
next replaces meet a concurrent writer (409), `fail_next` answers the next calls with a status,
`forbid` refuses a verb in a namespace (403, the RBAC message). The rules live in `kube_state`.
"""

from __future__ import annotations

import json
from typing import Any

import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from provisioner.simulator.kube_state import KUBE_TOKEN, KubeCall, KubeError, KubeState

__all__ = [
    "KUBE_TOKEN",
    "KubeCall",
    "KubeError",
    "KubeState",
    "create_kube_app",
    "kube_state",
    "kubeconfig",
]

_VERB = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
_USER = "system:serviceaccount:streamkap:streamkap-provisioner"


def kube_state(app: Starlette) -> KubeState:
    """The `KubeState` an app made by `create_kube_app` serves."""
    state: KubeState = app.state.kube
    return state


# --- the request pipeline ----------------------------------------------------------------------


async def handle(request: Request) -> Response:
    state = kube_state(request.app)
    content_type = request.headers.get("content-type", "").split(";")[0].strip()
    try:
        answer = await _handle(request, state, content_type)
    except KubeError as exc:
        answer = JSONResponse(exc.status(), exc.code)
    state.record(KubeCall(request.method, request.url.path, answer.status_code, content_type))
    return answer


async def _handle(request: Request, state: KubeState, content_type: str) -> Response:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or token.strip() not in state.tokens:
        raise KubeError(401, "Unauthorized", "Unauthorized")
    if state.failures:
        status = state.failures.pop(0)
        reason = {429: "TooManyRequests", 503: "ServiceUnavailable"}.get(status, "InternalError")
        headers = {"Retry-After": "0"} if status == 429 else None
        body = KubeError(status, reason, "the server is currently unable to handle the request")
        return JSONResponse(body.status(), status, headers=headers)
    namespace = request.path_params.get("namespace")
    name = request.path_params.get("name")
    method = request.method
    verb = "list" if method == "GET" and name is None else _VERB.get(method, "")
    if (verb, namespace or "") in state.forbidden:
        where = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
        raise KubeError(
            403,
            "Forbidden",
            f'secrets{f" {json.dumps(name)}" if name else ""} is forbidden: User "{_USER}" '
            f'cannot {verb} resource "secrets" in API group ""{where}',
            {"name": name or "", "kind": "secrets"},
        )
    if name is None:
        if method == "GET":
            items = state.list(namespace, request.query_params.get("labelSelector", ""))
            return JSONResponse(
                {
                    "kind": "SecretList",
                    "apiVersion": "v1",
                    "metadata": {"resourceVersion": state.list_version()},
                    "items": items,
                }
            )
        assert namespace is not None
        return JSONResponse(state.create(namespace, await _body(request)), 201)
    assert namespace is not None
    if method == "GET":
        return JSONResponse(state.get(namespace, name))
    if method == "PUT":
        return JSONResponse(state.replace(namespace, name, await _body(request)))
    if method == "DELETE":
        return JSONResponse(state.delete(namespace, name, await _body(request)))
    if content_type in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
        return JSONResponse(state.merge_patch(namespace, name, await _body(request)))
    if content_type == "application/apply-patch+yaml":
        manager = request.query_params.get("fieldManager")
        if not manager:
            raise KubeError(
                400, "BadRequest", "PATCH with application/apply-patch+yaml requires fieldManager"
            )
        created = (namespace, name) not in state.secrets
        applied = state.apply(namespace, name, await _body(request, yaml_ok=True), manager)
        return JSONResponse(applied, 201 if created else 200)
    raise KubeError(
        415,
        "UnsupportedMediaType",
        f"the body of the request was in an unknown format: {content_type or 'none'}",
    )


async def _body(request: Request, *, yaml_ok: bool = False) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = yaml.safe_load(raw) if yaml_ok else json.loads(raw)
    except (ValueError, yaml.YAMLError) as exc:
        raise KubeError(400, "BadRequest", f"the body could not be decoded: {exc}") from None
    if not isinstance(body, dict):
        raise KubeError(400, "BadRequest", "the body is not an object")
    return body


async def _version(request: Request) -> Response:
    return JSONResponse(
        {"major": "1", "minor": "30", "gitVersion": "v1.30.0-streamkap-stub", "platform": "stub"}
    )


def create_kube_app(state: KubeState | None = None) -> Starlette:
    """A Starlette app serving `state` (a fresh one if None) as `app.state.kube`."""
    methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    app = Starlette(
        routes=[
            Route("/version", _version, methods=["GET"]),
            Route("/api/v1/secrets", handle, methods=["GET"]),
            Route("/api/v1/namespaces/{namespace}/secrets", handle, methods=["GET", "POST"]),
            Route("/api/v1/namespaces/{namespace}/secrets/{name}", handle, methods=methods),
        ]
    )
    app.state.kube = state if state is not None else KubeState()
    return app


def kubeconfig(server: str, token: str = KUBE_TOKEN) -> str:
    """A kubeconfig (YAML) whose current context reaches the stub at `server` with `token`."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "simulator", "cluster": {"server": server}}],
        "users": [{"name": "simulator", "user": {"token": token}}],
        "contexts": [
            {
                "name": "simulator",
                "context": {"cluster": "simulator", "user": "simulator", "namespace": "default"},
            }
        ],
        "current-context": "simulator",
    }
    return yaml.safe_dump(config, sort_keys=False)
