"""Tests of the Streamkap API simulator: the API, its faults, its state helpers and serving."""

from __future__ import annotations

import functools
import json
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import anyio
import httpx
import pytest
from pydantic import ValidationError

from provisioner.simulator import (
    ADMIN_CLIENT_ID,
    ADMIN_SECRET,
    NO_RESPONSE,
    SERVICE_ID,
    Call,
    FaultConfig,
    ManualClock,
    Role,
    SimulatedConnectionDrop,
    SimulatorState,
    create_app,
    get_state,
    serve_forever,
    serve_in_thread,
)
from tests.support.factories import asgi_client

CREDS = "/auth/client-credentials"
ADMIN_LOGIN = {"client_id": ADMIN_CLIENT_ID, "secret": ADMIN_SECRET}


@pytest.fixture
def state(clock: ManualClock) -> SimulatorState:
    return SimulatorState(now=clock)


@pytest.fixture
async def client(state: SimulatorState) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(create_app(state), "http://sim") as client:
        yield client


async def _create(client: httpx.AsyncClient, auth: dict[str, str], **body: Any) -> dict[str, Any]:
    response = await client.post(CREDS, json=body, headers=auth)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


# Tokens -----------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_login_answers_a_token(client: httpx.AsyncClient, clock: ManualClock) -> None:
    response = await client.post("/auth/access-token", json=ADMIN_LOGIN)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"accessToken", "expires", "expiresIn", "refreshToken"}
    assert body["expiresIn"] == 3600
    assert datetime.fromisoformat(body["expires"]) == clock() + timedelta(seconds=3600)
    headers = {"Authorization": f"Bearer {body['accessToken']}"}
    assert (await client.get("/auth/roles", headers=headers)).status_code == 200


@pytest.mark.anyio
@pytest.mark.parametrize(
    "body", [{"client_id": ADMIN_CLIENT_ID, "secret": "wrong"}, {"client_id": "x", "secret": "é"}]
)
async def test_login_with_wrong_credentials_is_401(
    client: httpx.AsyncClient, body: dict[str, str]
) -> None:
    response = await client.post("/auth/access-token", json=body)
    assert response.status_code == 401
    assert isinstance(response.json()["detail"], str)


@pytest.mark.anyio
async def test_login_without_secret_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post("/auth/access-token", json={"client_id": "x"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "secret"]


@pytest.mark.anyio
async def test_refresh(client: httpx.AsyncClient, state: SimulatorState) -> None:
    refresh = state.issue_token()["refreshToken"]
    response = await client.post("/auth/access-token/refresh", json={"refresh_token": refresh})
    assert response.status_code == 200
    assert state.authenticate(response.json()["accessToken"])
    unknown = await client.post("/auth/access-token/refresh", json={"refresh_token": "nope"})
    assert unknown.status_code == 401
    assert "detail" in unknown.json()


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/auth/roles"), ("GET", CREDS), ("POST", CREDS), ("DELETE", f"{CREDS}/cc_x")],
)
@pytest.mark.parametrize("header", [None, "Bearer nope", "Basic abc"])
async def test_calls_need_a_valid_token(
    client: httpx.AsyncClient, method: str, path: str, header: str | None
) -> None:
    headers = {} if header is None else {"Authorization": header}
    response = await client.request(method, path, headers=headers, json={})
    assert response.status_code == 401
    assert response.json() == {"detail": "Not authenticated"}


@pytest.mark.anyio
async def test_token_expires_after_ttl(
    client: httpx.AsyncClient, state: SimulatorState, clock: ManualClock
) -> None:
    state.update_faults(token_ttl=60)
    token = (await client.post("/auth/access-token", json=ADMIN_LOGIN)).json()
    assert token["expiresIn"] == 60
    headers = {"Authorization": f"Bearer {token['accessToken']}"}
    clock.advance(59)
    assert (await client.get("/auth/roles", headers=headers)).status_code == 200
    clock.advance(1)
    expired = await client.get("/auth/roles", headers=headers)
    assert (expired.status_code, expired.json()) == (401, {"detail": "Not authenticated"})
    refreshed = await client.post(
        "/auth/access-token/refresh", json={"refresh_token": token["refreshToken"]}
    )
    headers = {"Authorization": f"Bearer {refreshed.json()['accessToken']}"}
    assert (await client.get("/auth/roles", headers=headers)).status_code == 200


@pytest.mark.anyio
async def test_created_credential_can_log_in(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    created = await _create(client, auth, role_ids=["role-read-only"])
    login = {"client_id": created["client_id"], "secret": created["secret"]}
    assert (await client.post("/auth/access-token", json=login)).status_code == 200
    await client.delete(f"{CREDS}/{created['client_id']}", headers=auth)
    assert (await client.post("/auth/access-token", json=login)).status_code == 401


# Roles and credentials --------------------------------------------------------------------------


@pytest.mark.anyio
async def test_default_roles(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    roles = (await client.get("/auth/roles", headers=auth)).json()
    # The product's role names; keys as the provider's fixtures spell them.
    assert [(r["id"], r["key"], r["name"]) for r in roles] == [
        ("role-admin", "Admin", "Admin"),
        ("role-data-admin", "DataAdmin", "Data Admin"),
        ("role-read-only", "ReadOnly", "Read Only"),
    ]
    fields = {"id", "key", "name", "description", "created_at", "updated_at", "permissions"}
    assert all(set(role) == fields for role in roles)


@pytest.mark.anyio
async def test_roles_are_configurable() -> None:
    state = SimulatorState(roles=[Role("r-1", "ops", "Ops")])
    token = state.issue_token()["accessToken"]
    async with asgi_client(create_app(state), "http://sim") as client:
        roles = await client.get("/auth/roles", headers={"Authorization": f"Bearer {token}"})
    assert [role["key"] for role in roles.json()] == ["ops"]


@pytest.mark.anyio
async def test_create_answers_201_and_listing_masks_the_secret(
    client: httpx.AsyncClient, auth: dict[str, str], state: SimulatorState, clock: ManualClock
) -> None:
    created = await _create(
        client,
        auth,
        description="Payments [provisioner:payments/ingest]",
        role_ids=["role-admin"],
        service_id="svc-1",
    )
    # Exactly the documented `ClientCredential` fields: no `permission_ids`.
    assert set(created) == {
        "created_by_user",
        "client_id",
        "description",
        "created_at",
        "roles",
        "service_id",
        "secret",
    }
    assert created["client_id"].startswith("cc_")
    secret = created["secret"]
    assert "*" not in secret
    assert secret == state.secret_of(created["client_id"])
    assert [role["key"] for role in created["roles"]] == ["Admin"]
    assert created["service_id"] == "svc-1"
    assert created["created_by_user"]["id"]
    assert datetime.fromisoformat(created["created_at"]) == clock()
    listed = (await client.get(CREDS, headers=auth)).json()
    # Masked the way the provider's tests show it: first and last three characters kept.
    masked = f"{secret[:3]}******{secret[-3:]}"
    assert listed == [{**created, "secret": masked}]
    assert secret not in json.dumps(listed)


@pytest.mark.anyio
async def test_create_with_permissions_only_keeps_them_off_the_answer(
    client: httpx.AsyncClient, auth: dict[str, str], state: SimulatorState
) -> None:
    created = await _create(client, auth, permission_ids=["perm-1"])
    assert created["roles"] == []
    assert "permission_ids" not in created
    record = state.get(created["client_id"])
    assert record is not None
    assert record.permission_ids == ("perm-1",)


@pytest.mark.anyio
async def test_create_accepts_nulls_and_extra_keys(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    # Roles are required (or permissions, not both); every other field may be null.
    body = {"description": None, "service_id": None, "permission_ids": None}
    created = await _create(client, auth, **body, role_ids=["role-read-only"], extra="ok")
    assert [role["id"] for role in created["roles"]] == ["role-read-only"]
    assert created["description"] is None
    assert created["service_id"] == SERVICE_ID  # computed: the caller's service filled in
    assert "extra" not in created
    assert "permission_ids" not in created


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("content", "loc", "error_type"),
    [
        (b'{"role_ids": []}', ["body", "role_ids"], "too_short"),
        (b'{"permission_ids": []}', ["body", "permission_ids"], "too_short"),
        (b'{"role_ids": "role-admin"}', ["body", "role_ids"], "list_type"),
        (b'{"role_ids": ["role-admin", 1]}', ["body", "role_ids", 1], "string_type"),
        (b'{"description": 5}', ["body", "description"], "string_type"),
        (b'{"service_id": ["x"]}', ["body", "service_id"], "string_type"),
        (b"[]", ["body"], "model_type"),
        (b'"text"', ["body"], "model_type"),
        (b"{nope", ["body", 1], "json_invalid"),
        (b"", ["body"], "missing"),
    ],
)
async def test_create_validates_like_the_schema(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    state: SimulatorState,
    content: bytes,
    loc: list[Any],
    error_type: str,
) -> None:
    headers = {**auth, "Content-Type": "application/json"}
    response = await client.post(CREDS, content=content, headers=headers)
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert (error["loc"], error["type"]) == (loc, error_type)
    assert isinstance(error["msg"], str)
    assert state.live() == []


@pytest.mark.anyio
async def test_create_rejects_unknown_role_ids(
    client: httpx.AsyncClient, auth: dict[str, str], state: SimulatorState
) -> None:
    body = {"role_ids": ["role-admin", "role-nope"]}
    response = await client.post(CREDS, json=body, headers=auth)
    assert response.status_code == 422
    assert [e["loc"] for e in response.json()["detail"]] == [["body", "role_ids", 1]]
    assert state.live() == []


@pytest.mark.anyio
async def test_delete(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    created = await _create(client, auth, role_ids=["role-data-admin"])
    path = f"{CREDS}/{created['client_id']}"
    first = await client.delete(path, headers=auth)
    assert (first.status_code, first.content) == (200, b"")  # an empty body, not JSON
    again = await client.delete(path, headers=auth)
    assert again.status_code == 404
    assert isinstance(again.json()["detail"], str)
    assert (await client.get(CREDS, headers=auth)).json() == []


@pytest.mark.anyio
async def test_unknown_routes_answer_json(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    missing = await client.get("/nope", headers=auth)
    assert (missing.status_code, missing.json()) == (404, {"detail": "Not Found"})
    wrong_method = await client.put(CREDS, headers=auth)
    assert wrong_method.status_code == 405
    assert "detail" in wrong_method.json()


# Faults -----------------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("faults", [FaultConfig(error_rate=1.0), FaultConfig(fail_all=True)])
async def test_unavailable_api_answers_503_but_still_logs_in(
    client: httpx.AsyncClient, state: SimulatorState, faults: FaultConfig
) -> None:
    state.faults = faults
    token = await client.post("/auth/access-token", json=ADMIN_LOGIN)
    assert token.status_code == 200
    headers = {"Authorization": f"Bearer {token.json()['accessToken']}"}
    response = await client.post(CREDS, json={}, headers=headers)
    assert (response.status_code, response.json()) == (503, {"detail": "Service Unavailable"})
    assert state.live() == []


@pytest.mark.anyio
async def test_faults_can_include_token_calls(
    client: httpx.AsyncClient, state: SimulatorState
) -> None:
    state.update_faults(fail_all=True, include_token_calls=True)
    assert (await client.post("/auth/access-token", json=ADMIN_LOGIN)).status_code == 503


@pytest.mark.anyio
async def test_error_rate_is_reproducible_with_a_seed(auth: dict[str, str]) -> None:
    async def statuses(seed: int) -> list[int]:
        state = SimulatorState(faults=FaultConfig(error_rate=0.5, seed=seed))
        headers = {"Authorization": f"Bearer {state.issue_token()['accessToken']}"}
        async with asgi_client(create_app(state), "http://sim") as client:
            return [(await client.get(CREDS, headers=headers)).status_code for _ in range(40)]

    first = await statuses(7)
    assert first == await statuses(7)
    assert {200, 503} == set(first)


@pytest.mark.anyio
async def test_rate_limit_answers_429_with_retry_after(
    client: httpx.AsyncClient, auth: dict[str, str], state: SimulatorState, clock: ManualClock
) -> None:
    state.faults = FaultConfig(rate_limit=0.25, burst=2)
    answers = [await client.get(CREDS, headers=auth) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[2].headers["Retry-After"] == "4"
    assert answers[2].json() == {"detail": "Too Many Requests"}
    clock.advance(3.9)
    assert (await client.get(CREDS, headers=auth)).headers["Retry-After"] == "1"
    clock.advance(0.1)
    assert (await client.get(CREDS, headers=auth)).status_code == 200


@pytest.mark.anyio
async def test_rate_limit_spares_token_calls(
    client: httpx.AsyncClient, state: SimulatorState
) -> None:
    state.faults = FaultConfig(rate_limit=1, burst=1)
    logins = [await client.post("/auth/access-token", json=ADMIN_LOGIN) for _ in range(3)]
    assert [login.status_code for login in logins] == [200, 200, 200]


@pytest.mark.anyio
async def test_drop_after_create_commits_but_raises(
    client: httpx.AsyncClient, auth: dict[str, str], state: SimulatorState
) -> None:
    state.faults = FaultConfig(drop_after_create_rate=1.0)
    with pytest.raises(SimulatedConnectionDrop) as caught:
        await client.post(CREDS, json={"role_ids": ["role-admin"]}, headers=auth)
    assert isinstance(caught.value, httpx.RemoteProtocolError)
    assert len(state.live()) == 1
    assert state.write_calls() == [Call("POST", CREDS, NO_RESPONSE)]


@pytest.mark.anyio
async def test_error_after_create_commits_and_answers_500(
    client: httpx.AsyncClient, auth: dict[str, str], state: SimulatorState
) -> None:
    state.faults = FaultConfig(error_after_create_rate=1.0)
    response = await client.post(CREDS, json={"role_ids": ["role-admin"]}, headers=auth)
    assert (response.status_code, response.json()) == (500, {"detail": "Internal Server Error"})
    assert len(state.live()) == 1


@pytest.mark.anyio
async def test_latency_does_not_serialise_calls(
    client: httpx.AsyncClient, auth: dict[str, str], state: SimulatorState
) -> None:
    state.faults = FaultConfig(latency=0.1)
    started = time.monotonic()
    async with anyio.create_task_group() as tasks:
        for _ in range(10):
            tasks.start_soon(functools.partial(client.get, "/auth/roles", headers=auth))
    elapsed = time.monotonic() - started
    assert 0.1 <= elapsed < 0.6
    assert len(state.calls("GET", "/auth/roles")) == 10


def test_fault_config_is_validated() -> None:
    with pytest.raises(ValidationError):
        FaultConfig(error_rate=1.5)
    with pytest.raises(ValidationError):
        SimulatorState().update_faults(latency=-1)
    with pytest.raises(ValidationError):
        FaultConfig.model_validate({"typo": 1})


# State helpers and the call log ----------------------------------------------------------------


@pytest.mark.anyio
async def test_call_log_counts_every_call(
    client: httpx.AsyncClient, auth: dict[str, str], state: SimulatorState
) -> None:
    created = await _create(client, auth, role_ids=["role-admin"])
    await client.get(CREDS, headers=auth)
    await client.delete(f"{CREDS}/{created['client_id']}", headers=auth)
    state.update_faults(fail_all=True)
    await client.post(CREDS, json={}, headers=auth)
    assert state.calls(method="get") == [Call("GET", CREDS, 200)]
    assert [c.status for c in state.write_calls()] == [201, 200, 503]
    assert state.calls(path_prefix="/auth/roles") == []
    state.reset_calls()
    assert state.calls() == []


def test_state_helpers(clock: ManualClock) -> None:
    state = SimulatorState(now=clock)
    old = state.add_credential(description="unmanaged", role_ids=["role-admin"])
    new = state.add_credential(service_id="svc", created_at=clock() - timedelta(days=1))
    assert [r.client_id for r in state.live()] == [old.client_id, new.client_id]
    assert state.secret_of(old.client_id) == old.secret
    state.age(old.client_id, timedelta(days=10))
    assert state.live()[0].created_at == clock() - timedelta(days=10)
    state.age(None, timedelta(days=1))
    assert [r.created_at for r in state.live()] == [
        clock() - timedelta(days=11),
        clock() - timedelta(days=2),
    ]
    assert state.delete_credential(old.client_id)
    assert not state.delete_credential(old.client_id)
    with pytest.raises(KeyError):
        state.secret_of(old.client_id)
    with pytest.raises(ValueError, match="unknown role"):
        state.add_credential(role_ids=["nope"])


def test_naive_clock_is_taken_as_utc() -> None:
    state = SimulatorState(now=lambda: datetime(2025, 1, 1))
    assert state.now().utcoffset() == timedelta(0)


def test_create_app_exposes_its_state() -> None:
    state = SimulatorState()
    assert get_state(create_app(state)) is state
    assert isinstance(get_state(create_app()), SimulatorState)


# Over a real socket -----------------------------------------------------------------------------


def test_served_over_a_socket() -> None:
    state = SimulatorState()
    with serve_in_thread(create_app(state)) as url, httpx.Client(base_url=url) as client:
        token = client.post("/auth/access-token", json=ADMIN_LOGIN).json()["accessToken"]
        headers = {"Authorization": f"Bearer {token}"}
        created = client.post(CREDS, json={"role_ids": ["role-admin"]}, headers=headers)
        assert created.status_code == 201
        assert [r.client_id for r in state.live()] == [created.json()["client_id"]]
        secret = created.json()["secret"]
        listed = client.get(CREDS, headers=headers).json()
        assert listed[0]["secret"] == f"{secret[:3]}******{secret[-3:]}"


def test_drop_over_a_socket_closes_the_connection() -> None:
    state = SimulatorState(faults=FaultConfig(drop_after_create_rate=1.0))
    headers = {"Authorization": f"Bearer {state.issue_token()['accessToken']}"}
    with serve_in_thread(create_app(state)) as url, httpx.Client(base_url=url) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            client.post(CREDS, json={"role_ids": ["role-admin"]}, headers=headers)
        assert len(state.live()) == 1
        state.faults = FaultConfig()
        assert client.get(CREDS, headers=headers).status_code == 200
    assert [c.status for c in state.calls()] == [NO_RESPONSE, 200]


@pytest.mark.anyio
async def test_serve_forever_until_cancelled() -> None:
    state = SimulatorState()
    urls: list[str] = []
    ready = anyio.Event()

    def on_ready(url: str) -> None:
        urls.append(url)
        ready.set()

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(lambda: serve_forever(create_app(state), on_ready=on_ready))
        with anyio.fail_after(5):
            await ready.wait()
        async with httpx.AsyncClient(base_url=urls[0]) as client:
            answer = await client.post("/auth/access-token", json=ADMIN_LOGIN)
        assert answer.status_code == 200
        tasks.cancel_scope.cancel()
    assert state.calls() == [Call("POST", "/auth/access-token", 200)]
