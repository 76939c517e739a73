"""The engine with project keys, against the in-process simulator and in-memory sinks (on a
manual clock): a mixed plan converges; an added Kafka access is delivered beside the API secret
the sinks hold, or undone (key deleted, made anew) when a sink cannot take it; a key still
`creating` after the wait is delivered but not counted converged; deletes go to each kind's API.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import pytest

from provisioner.model import (
    AclEntry,
    CredentialKind,
    DesiredCredential,
    KafkaAccess,
    Kind,
    McpScope,
    Outcome,
    Reason,
    SinkRecord,
    Status,
)
from provisioner.reconcile.engine import Engine
from provisioner.reconcile.plan import plan
from provisioner.simulator import FaultConfig, ManualClock, SimulatorState
from provisioner.simulator.project_keys_state import ProjectKeyRecord
from provisioner.streamkap import StreamkapClient
from tests.fakes.memory import MemorySink
from tests.support.factories import desired, no_sleep, project_key, sim_client

pytestmark = pytest.mark.anyio

KAFKA = KafkaAccess(acls=frozenset({AclEntry("TOPIC", "orders.", "PREFIXED", "READ")}))
ACTIVATION_TIMEOUT = 30.0
SINKS = ("a", "b")


class Time:
    """Every sleep of the client moves its clock and the simulator's: waits cost nothing."""

    def __init__(self, sim_clock: ManualClock) -> None:
        self.sim_clock = sim_clock
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.sim_clock.advance(seconds)


@pytest.fixture
def state(clock: ManualClock) -> SimulatorState:
    state = SimulatorState(now=clock)
    state.project_keys.activation_delay = 5  # a Kafka key is `creating` for a while
    return state


@pytest.fixture
async def client(state: SimulatorState, clock: ManualClock) -> AsyncIterator[StreamkapClient]:
    time = Time(clock)
    async with sim_client(
        state, sleep=time.sleep, clock=time.monotonic, activation_timeout=ACTIVATION_TIMEOUT
    ) as client:
        yield client


def key(
    name: str,
    *,
    roles: tuple[str, ...] = ("role-read-only",),
    kafka: KafkaAccess | None = None,
    mcp: McpScope | None = None,
) -> DesiredCredential:
    """A project key of service `orders-reader`, delivered to both sinks."""
    made = project_key(name, roles=roles, kafka=kafka, mcp=mcp)
    return dataclasses.replace(made, sinks=SINKS)


async def run(
    client: StreamkapClient,
    sinks: dict[str, MemorySink],
    wanted: list[DesiredCredential],
    *,
    prune: bool = False,
) -> list[Outcome]:
    """Observe, plan and execute once, as `apply` does (both kinds listed)."""
    holdings = {d.key: {n: await sinks[n].read(d.service, d.name) for n in d.sinks} for d in wanted}
    remote = [
        *await client.credentials.list(),
        *await client.project_key_credentials.list(),
    ]
    the_plan = plan(wanted, remote, holdings, now=datetime.now(UTC), prune=prune)
    engine = Engine(
        client.credentials,
        sinks,
        concurrency=4,
        max_attempts=3,
        sleep=no_sleep,
        project_keys=client.project_key_credentials,
    )
    return await engine.execute(the_plan.actions)


def memory_sinks(**failing: Callable[[str], bool]) -> dict[str, MemorySink]:
    return {name: MemorySink(name, fail_writes=failing.get(name, False)) for name in SINKS}


def live_keys(state: SimulatorState) -> list[ProjectKeyRecord]:
    """Keys that are live: not on their way out."""
    return [k for k in state.project_keys.live() if k.status not in ("deleting", "delete_failed")]


def held_ids(sinks: dict[str, MemorySink]) -> set[str]:
    return {record.identity for sink in sinks.values() for record in sink.records.values()}


def assert_holds(record: SinkRecord | None, live: ProjectKeyRecord) -> None:
    """The record carries the key's id, its API secret and its Kafka login, as the API has them."""
    assert record is not None
    assert record.project_key_id == live.id
    if live.api_secret is None:
        assert record.client_id is None
        assert record.secret is None
    else:
        assert record.client_id == live.api_client_id
        assert record.secret is not None
        assert record.secret.get_secret_value() == live.api_secret
    if live.kafka_password is None:
        assert record.kafka is None
    else:
        assert record.kafka is not None
        assert record.kafka.username == live.kafka_username
        assert record.kafka.password.get_secret_value() == live.kafka_password


def one_live(state: SimulatorState, name: str) -> ProjectKeyRecord:
    (found,) = [k for k in live_keys(state) if k.name == name]
    return found


# --- a mixed plan --------------------------------------------------------------------------


async def test_a_mixed_plan_converges_and_each_record_holds_its_key(
    client: StreamkapClient, state: SimulatorState
) -> None:
    wanted = [
        desired("exporter", service="orders-reader", sinks=SINKS),
        key("api-only"),
        key("api-and-kafka", kafka=KAFKA),
        key("kafka-only", roles=(), kafka=KAFKA),
        key("agent", mcp=McpScope(profile="read-only", block=frozenset({"delete_pipeline"}))),
    ]
    sinks = memory_sinks()
    outcomes = await run(client, sinks, wanted)
    assert [o.status for o in outcomes] == [Status.OK] * 5
    assert {o.action.kind for o in outcomes} == {Kind.CREATE}
    for name in ("api-only", "api-and-kafka", "kafka-only", "agent"):
        live = one_live(state, f"orders-reader/{name}")
        assert live.status == "active"  # waited for, not left creating
        for sink in sinks.values():
            assert_holds(sink.records.get(f"orders-reader/{name}"), live)
    (credential,) = state.live()
    exporter = sinks["a"].records["orders-reader/exporter"]
    assert exporter.project_key_id is None
    assert exporter.client_id == credential.client_id
    assert exporter.secret is not None
    assert exporter.secret.get_secret_value() == credential.secret
    assert held_ids(sinks) == {credential.client_id} | {k.id for k in live_keys(state)}

    writes = len(state.write_calls("/project-keys")), len(state.write_calls())
    again = await run(client, sinks, wanted)
    assert again == []  # nothing to write
    assert (len(state.write_calls("/project-keys")), len(state.write_calls())) == writes


# --- added access --------------------------------------------------------------------------


async def test_added_kafka_access_is_delivered_beside_the_api_secret_held(
    client: StreamkapClient, state: SimulatorState
) -> None:
    sinks = memory_sinks()
    assert [o.status for o in await run(client, sinks, [key("stream")])] == [Status.OK]
    before = one_live(state, "orders-reader/stream")
    held = sinks["a"].records["orders-reader/stream"]
    assert held.kafka is None

    outcomes = await run(client, sinks, [key("stream", kafka=KAFKA)])
    assert [(o.action.kind, o.action.reason, o.status) for o in outcomes] == [
        (Kind.UPDATE, Reason.ACCESS_ADDED, Status.OK)
    ]
    after = one_live(state, "orders-reader/stream")
    assert after.id == before.id  # the same key, patched
    assert after.api_secret == before.api_secret
    assert after.status == "active"
    for sink in sinks.values():
        record = sink.records["orders-reader/stream"]
        assert_holds(record, after)
        assert record.secret == held.secret  # the API secret unchanged beside the new login
    assert [(c.method, c.path) for c in state.write_calls("/project-keys")] == [
        ("POST", "/project-keys"),
        ("PATCH", f"/project-keys/{before.id}"),
    ]


async def test_a_sink_failing_an_added_access_undoes_it_and_a_new_key_is_delivered(
    client: StreamkapClient, state: SimulatorState
) -> None:
    """The PATCH cannot be taken back: the sinks are put back, the key deleted, a new one made
    and delivered (the sink recovered meanwhile)."""
    sinks = memory_sinks()
    await run(client, sinks, [key("stream")])
    old = one_live(state, "orders-reader/stream")
    failures = iter([True] * 3)  # every attempt of the added access's delivery, then fine
    sinks["b"].fail_writes = lambda _key: next(failures, False)

    (outcome,) = await run(client, sinks, [key("stream", kafka=KAFKA)])
    assert outcome.status is Status.OK
    new = one_live(state, "orders-reader/stream")
    assert new.id != old.id
    assert new.id == outcome.client_id
    assert state.project_keys.get(old.id) is None or (
        state.project_keys.get(old.id).status == "deleting"  # type: ignore[union-attr]
    )
    assert ("orders-reader/stream", old.id) in sinks["a"].restores  # put back first
    for sink in sinks.values():
        assert_holds(sink.records["orders-reader/stream"], new)
    assert [k.id for k in live_keys(state)] == [new.id]


async def test_a_sink_that_keeps_failing_leaves_no_live_key_no_sink_holds(
    client: StreamkapClient, state: SimulatorState
) -> None:
    sinks = memory_sinks()
    await run(client, sinks, [key("stream")])
    old = one_live(state, "orders-reader/stream")
    held = sinks["a"].records["orders-reader/stream"]
    sinks["b"].fail_writes = True

    (outcome,) = await run(client, sinks, [key("stream", kafka=KAFKA)])
    assert outcome.status is Status.FAILED
    assert outcome.error is not None
    assert "b" in outcome.error
    assert live_keys(state) == []  # the patched key and the new one both went
    patched = [c for c in state.write_calls("/project-keys") if c.method == "PATCH"]
    creates = [c for c in state.write_calls("/project-keys") if c.method == "POST"]
    assert len(patched) == 1
    assert len(creates) == 2  # the first key, and the one made anew
    # Each sink holds what it held before: no secret of a deleted key's new access.
    assert sinks["a"].records["orders-reader/stream"] == held
    assert held.project_key_id == old.id


# --- a key still creating after the wait ---------------------------------------------------


async def test_added_kafka_access_still_creating_is_delivered_but_not_counted_converged(
    client: StreamkapClient, state: SimulatorState
) -> None:
    """Its secrets are shown once and its API access is the one held: delivered, not undone;
    but the key is not active, so the action fails and says so."""
    sinks = memory_sinks()
    await run(client, sinks, [key("stream")])
    state.faults = FaultConfig(slow_activation="never")

    (outcome,) = await run(client, sinks, [key("stream", kafka=KAFKA)])
    assert outcome.status is Status.FAILED
    live = one_live(state, "orders-reader/stream")
    assert live.status == "creating"
    assert outcome.error is not None
    assert f"added access to orders-reader/stream ({live.id}) and delivered it" in outcome.error
    assert "creating after the activation wait" in outcome.error
    for sink in sinks.values():
        assert_holds(sink.records["orders-reader/stream"], live)


# --- deletes go to each kind's API ---------------------------------------------------------


async def test_a_delete_goes_to_the_api_of_its_credentials_kind(
    client: StreamkapClient, state: SimulatorState
) -> None:
    sinks = memory_sinks()
    wanted = [desired("exporter", service="orders-reader", sinks=SINKS), key("stream")]
    await run(client, sinks, wanted)
    (credential,) = state.live()
    pk = one_live(state, "orders-reader/stream")

    outcomes = await run(client, sinks, [], prune=True)
    kinds = {o.action.client_id: (o.action.kind, o.action.credential_kind) for o in outcomes}
    assert kinds == {
        credential.client_id: (Kind.DELETE, CredentialKind.CLIENT_CREDENTIAL),
        pk.id: (Kind.DELETE, CredentialKind.PROJECT_KEY),
    }
    assert all(o.status is Status.OK for o in outcomes)
    deletes = [
        (c.method, c.path)
        for prefix in ("/auth/client-credentials", "/project-keys")
        for c in state.write_calls(prefix)
        if c.method == "DELETE"
    ]
    assert sorted(deletes) == [
        ("DELETE", f"/auth/client-credentials/{credential.client_id}"),
        ("DELETE", f"/project-keys/{pk.id}"),
    ]
    assert state.live() == []
    assert live_keys(state) == []
    assert held_ids(sinks) == set()  # the orphans' records went with them
