"""The API client against the in-process simulator: bodies, retries, errors and tokens."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx
import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from provisioner.errors import (
    AmbiguousCreate,
    ApiError,
    AuthError,
    CircuitOpen,
    PatchUnsupported,
    Stopped,
)
from provisioner.model import DesiredCredential
from provisioner.runtime import Halt
from provisioner.simulator import (
    FaultConfig,
    ManualClock,
    SimulatorState,
    create_app,
)
from provisioner.streamkap.answers import create_body
from provisioner.streamkap.client import StreamkapClient
from tests.support.factories import desired, sim_client

SCHEMA = json.loads(
    (Path(__file__).parents[1] / "data" / "client_credential_create_req.schema.json").read_text()
)


def credential(
    name: str = "ingest",
    role_ids: tuple[str, ...] = ("role-admin",),
    permission_ids: tuple[str, ...] = (),
    service_id: str | None = None,
    description: str | None = None,
) -> DesiredCredential:
    return desired(
        name,
        roles=role_ids,
        permissions=permission_ids,
        service_id=service_id,
        description=description,
    )


class Recorder(httpx.AsyncBaseTransport):
    """Wraps a transport and keeps every request body sent through it."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.requests: list[tuple[str, str, Any]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        self.requests.append((request.method, request.url.path, body))
        return await self.inner.handle_async_request(request)


class Sleeps:
    """An injected sleep that records waits instead of waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def recorder(state: SimulatorState) -> Recorder:
    return Recorder(httpx.ASGITransport(app=create_app(state)))


@pytest.fixture
async def client(
    state: SimulatorState, recorder: Recorder, sleeps: Sleeps
) -> AsyncIterator[StreamkapClient]:
    async with sim_client(state, recorder, sleep=sleeps, max_attempts=4) as api:
        yield api


@given(
    role_ids=st.lists(st.text(min_size=1, max_size=5), max_size=3).map(tuple),
    permission_ids=st.lists(st.text(min_size=1, max_size=5), max_size=3).map(tuple),
    service_id=st.none() | st.text(max_size=10),
    description=st.none() | st.text(max_size=20),
)
def test_every_create_body_matches_the_seed_schema(
    role_ids: tuple[str, ...],
    permission_ids: tuple[str, ...],
    service_id: str | None,
    description: str | None,
) -> None:
    body = create_body(credential("x", role_ids, permission_ids, service_id, description))
    jsonschema.validate(body, SCHEMA)


@pytest.mark.anyio
async def test_bodies_sent_over_the_wire_match_the_schema(
    client: StreamkapClient, recorder: Recorder, state: SimulatorState
) -> None:
    await client.credentials.create(credential("a"))
    # The API wants roles or permissions, not both: "b" names only a permission.
    await client.credentials.create(
        credential("b", role_ids=(), permission_ids=("perm-1",), service_id="svc-1")
    )
    creates = [
        body
        for method, path, body in recorder.requests
        if method == "POST" and path.endswith("client-credentials")
    ]
    assert len(creates) == 2
    for body in creates:
        jsonschema.validate(body, SCHEMA)
    assert creates[0]["role_ids"] == ["role-admin"]
    assert "permission_ids" not in creates[0]
    assert "role_ids" not in creates[1]
    assert creates[1]["permission_ids"] == ["perm-1"]
    assert len(state.live()) == 2


@pytest.mark.anyio
async def test_create_returns_the_secret_once_and_listing_masks_it(
    client: StreamkapClient, state: SimulatorState
) -> None:
    created = await client.credentials.create(credential(description="Payments"))
    assert created.secret is not None
    assert created.secret.get_secret_value() == state.secret_of(created.remote.client_id)
    assert created.remote.key == "api/ingest"
    assert created.remote.role_ids == frozenset({"role-admin"})
    (listed,) = await client.credentials.list()
    assert listed.client_id == created.remote.client_id
    assert listed.description == "Payments [provisioner:api/ingest]"
    assert "secret" not in repr(created)


@pytest.mark.anyio
async def test_rate_limit_is_retried_after_the_servers_delay() -> None:
    clock = ManualClock()
    state = SimulatorState(now=clock, faults=FaultConfig(rate_limit=0.5, burst=1))
    waits: list[float] = []

    async def sleep(seconds: float) -> None:  # time passes for the server as we wait
        waits.append(seconds)
        clock.advance(seconds)

    async with sim_client(
        state,
        sleep=sleep,
        clock=lambda: clock().timestamp(),  # the pacer's clock moves with the injected sleep
    ) as api:
        await api.list_roles()  # spends the only token in the bucket
        await api.credentials.list()
    assert waits == [2.0]  # Retry-After: 2 at 0.5 requests per second
    statuses = [call.status for call in state.calls(path_prefix="/auth/client-credentials")]
    assert statuses == [429, 200]


@pytest.mark.anyio
async def test_503_on_a_read_is_retried_with_backoff(
    client: StreamkapClient, state: SimulatorState, sleeps: Sleeps
) -> None:
    await client.list_roles()
    state.faults = FaultConfig(fail_all=True)
    with pytest.raises(ApiError) as caught:
        await client.credentials.list()
    assert caught.value.status == 503
    assert len(sleeps.waits) == 3  # four attempts
    assert all(0 <= wait <= 30 for wait in sleeps.waits)


@pytest.mark.anyio
async def test_a_5xx_on_create_is_ambiguous_not_retried(
    client: StreamkapClient, state: SimulatorState
) -> None:
    await client.list_roles()
    state.faults = FaultConfig(error_after_create_rate=1.0)
    with pytest.raises(AmbiguousCreate):
        await client.credentials.create(credential())
    assert len(state.live()) == 1  # committed once, never repeated
    assert len(state.write_calls()) == 1


@pytest.mark.anyio
async def test_a_dropped_create_is_ambiguous(
    client: StreamkapClient, state: SimulatorState
) -> None:
    await client.list_roles()
    state.faults = FaultConfig(drop_after_create_rate=1.0)
    with pytest.raises(AmbiguousCreate):
        await client.credentials.create(credential())
    assert len(state.live()) == 1


@pytest.mark.anyio
async def test_422_is_not_retried_and_names_the_field(
    client: StreamkapClient, state: SimulatorState, sleeps: Sleeps
) -> None:
    with pytest.raises(ApiError) as caught:
        await client.credentials.create(credential(role_ids=("role-nope",)))
    assert caught.value.status == 422
    assert caught.value.field_errors[0].startswith("role_ids.0:")
    assert not sleeps.waits
    assert len(state.write_calls()) == 1


@pytest.mark.anyio
async def test_a_401_refreshes_the_token_once_then_succeeds(state: SimulatorState) -> None:
    clock = ManualClock()
    state = SimulatorState(now=clock, faults=FaultConfig(token_ttl=60))
    async with sim_client(state) as api:
        await api.list_roles()
        clock.advance(timedelta(seconds=61))  # the server expires the token; our clock did not move
        await api.list_roles()
        assert api.requests.tokens.refreshes == 2  # login, then one refresh after the 401
    assert [c.status for c in state.calls(path_prefix="/auth/roles")] == [200, 401, 200]


@pytest.mark.anyio
async def test_tokens_are_renewed_ahead_of_expiry() -> None:
    now = [0.0]
    state = SimulatorState(faults=FaultConfig(token_ttl=100))
    async with sim_client(state, clock=lambda: now[0]) as api:
        await api.list_roles()
        now[0] = 85.0  # past 80% of the token's life
        await api.list_roles()
        assert api.requests.tokens.refreshes == 2
    assert all(call.status == 200 for call in state.calls())


@pytest.mark.anyio
async def test_wrong_login_is_an_auth_error(state: SimulatorState) -> None:
    async with sim_client(state, secret=SecretStr("wrong")) as api:
        with pytest.raises(AuthError) as caught:
            await api.list_roles()
    assert "wrong" not in str(caught.value)


@pytest.mark.anyio
async def test_many_tasks_hitting_401_share_one_refresh() -> None:
    clock = ManualClock()
    state = SimulatorState(now=clock, faults=FaultConfig(token_ttl=60))
    async with sim_client(state, concurrency=50) as api:
        await api.list_roles()
        clock.advance(timedelta(seconds=61))  # every task's token is now refused
        async with anyio.create_task_group() as group:
            for _ in range(50):
                group.start_soon(api.list_roles)
    assert len(state.calls("POST", "/auth/access-token/refresh")) == 1
    assert len(state.calls("GET", "/auth/roles")) == 1 + 50 + 50  # first, 401s, retries


@pytest.mark.anyio
async def test_hundreds_of_creates_outlive_a_one_second_token() -> None:
    state = SimulatorState(faults=FaultConfig(token_ttl=1, latency=0.02))
    # 300 calls x 20 ms / 4 in flight: at least 1.5 s.
    async with sim_client(state, concurrency=4) as api:
        started = anyio.current_time()
        async with anyio.create_task_group() as group:
            for index in range(300):
                group.start_soon(api.credentials.create, credential(f"c{index}"))
        elapsed = anyio.current_time() - started
    assert len(state.live()) == 300
    refreshes = len(state.calls("POST", "/auth/access-token/refresh"))
    assert elapsed > 1  # the run really outlived its first token
    assert 1 <= refreshes <= elapsed / 0.8 + 2  # renewed ahead of expiry, one at a time
    assert not [c for c in state.calls() if c.status == 401]


@pytest.mark.anyio
async def test_calls_after_a_429_are_paced_instead_of_refused_again() -> None:
    clock = ManualClock()
    state = SimulatorState(now=clock, faults=FaultConfig(rate_limit=2, burst=2))
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock.advance(seconds)

    async with sim_client(state, sleep=sleep, clock=lambda: clock().timestamp()) as api:
        for _ in range(4):
            await api.list_roles()
    statuses = [call.status for call in state.calls(path_prefix="/auth/roles")]
    assert statuses == [200, 200, 429, 200, 200]  # the burst of two spent, then one refusal
    assert waits[0] == 1.0  # the refused call waits its Retry-After...
    assert 0 < waits[1] < 1  # ...and the next waits only for its paced slot
    assert api.requests.pacer.rate is not None


@pytest.mark.anyio
async def test_when_the_api_is_down_calls_fail_fast_after_the_breaker_opens(
    client: StreamkapClient, state: SimulatorState, sleeps: Sleeps
) -> None:
    await client.list_roles()
    state.faults = FaultConfig(fail_all=True)
    for _ in range(5):  # 4 attempts each: the 20th failure opens the breaker
        with pytest.raises(ApiError):
            await client.credentials.list()
    state.reset_calls()
    with pytest.raises(CircuitOpen, match="20 API calls in a row failed"):
        await client.credentials.list()
    assert state.calls() == []  # failed without calling, and without backing off


@pytest.mark.anyio
async def test_a_call_failing_once_the_run_halted_is_not_retried(state: SimulatorState) -> None:
    halt = Halt()
    async with sim_client(state, halt=halt, max_attempts=6) as api:
        await api.list_roles()  # the API has answered: its 503s would be retried
        state.faults = FaultConfig(fail_all=True)
        state.reset_calls()
        halt.set("not started: stopped by SIGTERM")
        with pytest.raises(Stopped) as caught:
            await api.credentials.list()
    assert str(caught.value) == (
        "GET /auth/client-credentials: HTTP 503: Service Unavailable; "
        "not retried: stopped by SIGTERM"
    )
    assert len(state.calls()) == 1


@pytest.mark.anyio
async def test_a_refused_login_is_not_retried(state: SimulatorState) -> None:
    async with sim_client(state, secret=SecretStr("wrong")) as api:
        with pytest.raises(AuthError):
            await api.list_roles()
    assert len(state.calls("POST", "/auth/access-token")) == 1


@pytest.mark.anyio
async def test_update_changes_roles_in_place(
    client: StreamkapClient, state: SimulatorState
) -> None:
    created = await client.credentials.create(credential("a"))
    client_id = created.remote.client_id
    await client.credentials.update(client_id, credential("a", role_ids=("role-read-only",)))
    record = state.get(client_id)
    assert record is not None
    assert record.role_ids == ("role-read-only",)
    assert created.secret is not None
    assert record.secret == created.secret.get_secret_value()
    assert client.credentials.patch_supported is True


@pytest.mark.anyio
async def test_without_patch_only_one_is_sent_however_many_run_at_once(
    client: StreamkapClient, state: SimulatorState
) -> None:
    ids = [
        (await client.credentials.create(credential(f"c{i}"))).remote.client_id for i in range(4)
    ]
    state.patch_supported = False
    refused: list[str] = []

    async def update(client_id: str) -> None:
        try:
            await client.credentials.update(client_id, credential(role_ids=("role-read-only",)))
        except PatchUnsupported:
            refused.append(client_id)

    async with anyio.create_task_group() as group:
        for client_id in ids:
            group.start_soon(update, client_id)
    assert sorted(refused) == sorted(ids)
    assert [call.status for call in state.calls("PATCH")] == [405]
    assert client.credentials.patch_supported is False
