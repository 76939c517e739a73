"""A replace carried out by the engine against the in-process simulator."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from pydantic import SecretStr

from provisioner.model import DesiredCredential, Kind, Origin, Status, marked_description
from provisioner.reconcile.engine import Engine
from provisioner.reconcile.plan import plan
from provisioner.simulator import ADMIN_CLIENT_ID, ADMIN_SECRET, SimulatorState, create_app
from provisioner.streamkap import ApiConfig, Requests, StreamkapClient
from provisioner.streamkap.client_credentials import CREDENTIALS
from tests.fakes.memory import MemorySink
from tests.support.factories import no_sleep

ORIGIN = Origin("m.yaml", 0, ())
KEY = "api/ingest"


class FirstCreateAnswerLost(httpx.AsyncBaseTransport):
    """Lets the first create through to the simulator, then answers 502: its outcome is unknown."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.lost = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.method == "POST" and request.url.path == CREDENTIALS and not self.lost:
            self.lost += 1
            await response.aread()
            return httpx.Response(502, json={"detail": "Bad Gateway"})
        return response


def wanted() -> DesiredCredential:
    return DesiredCredential(
        service="api",
        name="ingest",
        description=None,
        service_id=None,
        roles=("role-admin",),
        permission_ids=(),
        sinks=("memory",),
        rotate_after=None,
        grace=timedelta(hours=1),
        origin=ORIGIN,
        roles_origin=ORIGIN,
        role_ids=("role-admin",),
    )


@pytest.mark.anyio
async def test_an_unknown_create_outcome_spares_the_credentials_left_in_grace() -> None:
    """The lost attempt's leftover is deleted; what a grace replace keeps live is not."""
    state = SimulatorState()
    now = datetime.now(UTC)
    marker = marked_description(None, KEY)
    older = state.add_credential(description=marker, created_at=now - timedelta(hours=2))
    in_grace = state.add_credential(description=marker, created_at=now - timedelta(minutes=30))
    sink = MemorySink()
    transport = FirstCreateAnswerLost(httpx.ASGITransport(app=create_app(state)))
    config = ApiConfig("http://sim", client_id=ADMIN_CLIENT_ID, secret=_secret())
    async with StreamkapClient(Requests(config, transport=transport)) as client:
        remote = await client.credentials.list()
        the_plan = plan([wanted()], remote, {KEY: {"memory": None}}, now=now)  # secret lost
        (replace,) = the_plan.actions
        assert (replace.kind, replace.client_id) == (Kind.REPLACE, in_grace.client_id)
        engine = Engine(client.credentials, {"memory": sink}, concurrency=4, sleep=no_sleep)
        (outcome,) = await engine.execute(the_plan.actions)
    assert outcome.status is Status.OK, outcome.error
    assert transport.lost == 1
    live = {record.client_id for record in state.live()}
    assert live == {in_grace.client_id, outcome.client_id}  # the older one retired: two live
    assert older.client_id not in live
    assert sink.records[KEY].client_id == outcome.client_id


def _secret() -> SecretStr:
    return SecretStr(ADMIN_SECRET)
