"""A Vault stub (ASGI): the KV v2 secrets engine with real Vault's JSON shapes, tokens and faults.

    state = VaultState()                       # mount `secret`, root token VAULT_ROOT_TOKEN
    app = create_vault_app(state)              # in-process: httpx.ASGITransport(app)
    with serve_in_thread(app) as url: ...      # over a real socket, e.g. for hvac

Served: `GET/POST/PUT/DELETE <mount>/data/<path>`, `GET/POST/PUT/DELETE/LIST
<mount>/metadata/<path>` (a POST sets the key's `custom_metadata`)
(also `GET ?list=true`), `POST <mount>/delete/<path>` and `<mount>/destroy/<path>`,
`auth/token/lookup-self`, `auth/token/renew-self`, and `POST auth/<mount>/login` for the
kubernetes (`{role, jwt}`) and approle (`{role_id, secret_id}`) methods, all under `/v1/`.
`X-Vault-Namespace` separates data.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from provisioner.simulator.calllog import CallLog
from provisioner.simulator.vault_state import (
    CasMismatch,
    LoginRefused,
    SecretKey,
    TokenInfo,
    VaultState,
    Version,
)

__all__ = ["VaultError", "create_vault_app", "vault_state"]

_WRITES = frozenset({"POST", "PUT", "DELETE"})
_CAPABILITIES = {
    "GET": ("read",),
    "LIST": ("list",),
    "DELETE": ("delete",),
    "POST": ("create", "update"),
    "PUT": ("create", "update"),
}
_LOGIN_PATH = re.compile(r"auth/(?P<mount>.+)/login")


class VaultError(Exception):
    """An error answer: `{"errors": [...]}` with a status, as Vault gives it."""

    def __init__(self, status: int, *errors: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(status, errors)
        self.status = status
        self.errors = list(errors)
        self.headers = headers


def vault_state(app: Starlette) -> VaultState:
    """The `VaultState` an app made by `create_vault_app` serves."""
    state: VaultState = app.state.vault
    return state


def _time(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if moment else ""


def _envelope(
    data: Any, status: int = 200, *, auth: Any = None, mount_type: str = "kv"
) -> JSONResponse:
    """Vault's response envelope around `data` (and `auth`, for logins and renewals)."""
    body = {
        "request_id": str(uuid.uuid4()),
        "lease_id": "",
        "renewable": False,
        "lease_duration": 0,
        "data": data,
        "wrap_info": None,
        "warnings": None,
        "auth": auth,
        "mount_type": mount_type,
    }
    return JSONResponse(body, status)


def _auth(token: str, info: TokenInfo, now: datetime) -> dict[str, Any]:
    """The `auth` block of a login or renewal answer, as Vault shapes it."""
    return {
        "client_token": token,
        "accessor": info.accessor,
        "policies": list(info.policies),
        "token_policies": list(info.policies),
        "metadata": info.metadata,
        "lease_duration": info.remaining(now),
        "renewable": info.renewable,
        "entity_id": "",
        "token_type": "service",
        "orphan": True,
        "mfa_requirement": None,
        "num_uses": 0,
    }


def _lookup(token: str, info: TokenInfo, now: datetime) -> dict[str, Any]:
    """The `data` of `auth/token/lookup-self`."""
    return {
        "accessor": info.accessor,
        "creation_time": int(info.issued_at.timestamp()),
        "creation_ttl": info.ttl,
        "display_name": info.display_name,
        "entity_id": "",
        "expire_time": None if info.expires_at is None else _time(info.expires_at),
        "explicit_max_ttl": 0,
        "id": token,
        "issue_time": _time(info.issued_at),
        "meta": info.metadata,
        "num_uses": 0,
        "orphan": True,
        "path": info.path,
        "policies": list(info.policies),
        "renewable": info.renewable,
        "ttl": info.remaining(now),
        "type": "service",
    }


def _version_metadata(version: Version, custom: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "created_time": _time(version.created_time),
        "custom_metadata": custom or None,  # the key's, shown with every version as Vault does
        "deletion_time": _time(version.deletion_time),
        "destroyed": version.destroyed,
        "version": version.number,
    }


# --- the request pipeline ------------------------------------------------------------------


async def handle(request: Request) -> Response:
    """Every `/v1/...` call: faults, then token, then mount, then the KV v2 operation."""
    sim = vault_state(request.app)
    listing = request.method == "GET" and request.query_params.get("list") == "true"
    method = "LIST" if listing else request.method
    path = request.path_params["path"].strip("/")
    login_mount = _login_mount(sim, method, path)
    await _faults(sim, write=method in _WRITES and login_mount is None)
    if login_mount is not None:  # logins need no token
        return _login(sim, login_mount, await _json_body(request))
    token = _token(request)
    info = sim.token_info(token)
    if info is None:  # unknown, revoked or expired
        raise VaultError(403, "permission denied")
    if path == "auth/token/lookup-self":
        return _envelope(_lookup(token, info, sim.now()), mount_type="token")
    if path == "auth/token/renew-self" and method in ("POST", "PUT"):
        renewed = sim.renew(token) or info
        return _envelope(None, auth=_auth(token, renewed, sim.now()), mount_type="token")
    route = sim.split(path)
    if route is None:
        raise VaultError(404, f'no handler for route "{path}". route entry not found.')
    if not sim.allowed(token, path, _CAPABILITIES.get(method, ())):
        raise VaultError(403, "permission denied")
    mount, operation, key_path = route
    key = (request.headers.get("x-vault-namespace", "").strip("/"), mount, key_path)
    return await _operate(request, sim, method, operation, key)


def _login_mount(sim: VaultState, method: str, path: str) -> str | None:
    """The auth mount a `POST auth/<mount>/login` logs in at, if the stub has that mount."""
    match = _LOGIN_PATH.fullmatch(path)
    if method not in ("POST", "PUT") or match is None:
        return None
    mount = match["mount"]
    return mount if mount in sim.auth_mounts else None


def _login(sim: VaultState, mount: str, body: dict[str, Any]) -> Response:
    """A login answer with a new token, or Vault's error for a refused login."""
    try:
        login = sim.login(mount, body)
    except LoginRefused as exc:
        raise VaultError(exc.status, exc.message) from None
    return _envelope(None, auth=_auth(login.client_token, login.info, sim.now()), mount_type="")


async def _faults(sim: VaultState, *, write: bool) -> None:
    if sim.faults.latency > 0:
        await anyio.sleep(sim.faults.latency)
    refusal = sim.refusal(write=write)
    if refusal is None:
        return
    if refusal.status == 429:
        raise VaultError(429, "rate limit quota exceeded", headers=refusal.headers)
    raise VaultError(refusal.status, "Vault is sealed")


def _token(request: Request) -> str:
    token = request.headers.get("x-vault-token", "")
    scheme, _, bearer = request.headers.get("authorization", "").partition(" ")
    return token or (bearer.strip() if scheme.lower() == "bearer" else "")


async def _operate(
    request: Request, sim: VaultState, method: str, operation: str, key: SecretKey
) -> Response:
    if operation == "metadata" and method == "LIST":
        return _list(sim, key)
    if not key[2]:
        raise VaultError(404)
    if operation == "data" and method == "GET":
        return _read(sim, key, request.query_params.get("version", "0"))
    if operation == "data" and method in ("POST", "PUT"):
        return _write(sim, key, await _json_body(request))
    if operation == "data" and method == "DELETE":
        sim.delete_versions(key)
        return Response(status_code=204)
    if operation == "metadata" and method == "GET":
        return _metadata(sim, key)
    if operation == "metadata" and method in ("POST", "PUT"):
        sim.set_custom_metadata(key, _custom_metadata(await _json_body(request)))
        return Response(status_code=204)
    if operation == "metadata" and method == "DELETE":
        sim.delete_metadata(key)
        return Response(status_code=204)
    if operation in ("delete", "destroy") and method in ("POST", "PUT"):
        return _delete_or_destroy(sim, operation, key, await _json_body(request))
    raise VaultError(405, "unsupported operation")


# --- operations ----------------------------------------------------------------------------


def _read(sim: VaultState, key: SecretKey, version: str) -> Response:
    if not version.isdigit():
        raise VaultError(400, "error parsing version: must be an integer")
    found = sim.read(key, int(version))
    if found is None:
        raise VaultError(404)
    custom = sim.custom_metadata(key)
    data = {
        "data": found.data if found.live else None,
        "metadata": _version_metadata(found, custom),
    }
    # A deleted or destroyed version answers 404, still with its metadata (clients rely on it).
    return _envelope(data, 200 if found.live else 404)


def _write(sim: VaultState, key: SecretKey, body: dict[str, Any]) -> Response:
    data = body.get("data")
    if not isinstance(data, dict):
        raise VaultError(400, "no data provided")
    options = body.get("options") or {}
    cas = options.get("cas") if isinstance(options, dict) else None
    if cas is not None and not isinstance(cas, int):
        raise VaultError(400, "invalid cas parameter")
    try:
        version = sim.write(key, data, cas)
    except CasMismatch as exc:
        raise VaultError(sim.cas_mismatch_status, str(exc)) from None
    return _envelope(_version_metadata(version, sim.custom_metadata(key)))


def _custom_metadata(body: dict[str, Any]) -> dict[str, str]:
    custom = body.get("custom_metadata") or {}
    if not isinstance(custom, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in custom.items()
    ):
        raise VaultError(400, "custom_metadata must be a map of strings to strings")
    return custom


def _metadata(sim: VaultState, key: SecretKey) -> Response:
    secret = sim.metadata(key)
    if secret is None:
        raise VaultError(404)
    versions = {str(n): _version_metadata(v) for n, v in sorted(secret.versions.items())}
    for entry in versions.values():
        del entry["version"], entry["custom_metadata"]
    return _envelope(
        {
            "cas_required": False,
            "created_time": _time(secret.created_time),
            "current_version": secret.current_version,
            "custom_metadata": secret.custom_metadata or None,
            "delete_version_after": "0s",
            "max_versions": 0,
            "oldest_version": 0,
            "updated_time": _time(secret.updated_time),
            "versions": versions,
        }
    )


def _list(sim: VaultState, key: SecretKey) -> Response:
    keys = sim.list_keys(*key)
    if not keys:
        raise VaultError(404)
    return _envelope({"keys": keys})


def _delete_or_destroy(
    sim: VaultState, operation: str, key: SecretKey, body: dict[str, Any]
) -> Response:
    versions = body.get("versions")
    if not isinstance(versions, list) or not all(isinstance(v, int) for v in versions):
        raise VaultError(400, "no version number provided")
    if operation == "delete":
        sim.delete_versions(key, versions)
    else:
        sim.destroy_versions(key, versions)
    return Response(status_code=204)


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = json.loads(raw) if raw.strip() else {}
    except ValueError as exc:
        raise VaultError(400, f"failed to parse JSON input: {exc}") from None
    if not isinstance(body, dict):
        raise VaultError(400, "failed to parse JSON input: expected an object")
    return body


# --- the app -------------------------------------------------------------------------------


def _error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, VaultError)
    return JSONResponse({"errors": exc.errors}, exc.status, headers=exc.headers)


def create_vault_app(state: VaultState | None = None) -> Starlette:
    """A Starlette app serving `state` (a fresh default one if None) as `app.state.vault`."""
    methods = ["GET", "POST", "PUT", "DELETE", "LIST"]
    app = Starlette(
        routes=[Route("/v1/{path:path}", handle, methods=methods)],
        middleware=[Middleware(CallLog, record=_record_call)],
        exception_handlers={VaultError: _error},
    )
    app.state.vault = state if state is not None else VaultState()
    return app


def _record_call(app: Starlette, method: str, path: str, status: int) -> None:
    vault_state(app).record_call(method, path, status)
