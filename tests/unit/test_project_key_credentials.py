"""The project keys' `CredentialApi` against the in-process simulator, on a manual clock: list,
create (API only, API + Kafka, Kafka only, MCP scoped; the wait for `active`), update (what
differs, adding Kafka or API access, what only a replace can do), delete and verify."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from pydantic import SecretStr

from provisioner.errors import PatchUnsupported, ProjectKeyBusy, UnusableCreate
from provisioner.kafka_usernames import same_user
from provisioner.model import (
    AclEntry,
    CredentialKind,
    DesiredCredential,
    KafkaAccess,
    McpScope,
    SinkRecord,
    State,
)
from provisioner.simulator import FaultConfig, ManualClock, SimulatorState, create_app
from provisioner.streamkap import StreamkapClient
from provisioner.streamkap.project_key_bodies import KafkaConfig, NewProjectKey
from provisioner.streamkap.project_key_credentials import POLL_CAP, ProjectKeyCredentials
from tests.support.factories import project_key, sim_client

pytestmark = pytest.mark.anyio

ACTIVATION_TIMEOUT = 60.0
READS = frozenset(
    {
        AclEntry("TOPIC", "orders.", "PREFIXED", "READ"),
        AclEntry("TOPIC", "orders.", "PREFIXED", "DESCRIBE"),
        AclEntry("GROUP", "orders-reader", "LITERAL", "READ"),
    }
)
KAFKA = KafkaAccess(acls=READS, allow_ips=frozenset({"10.0.0.0/8"}), schema_registry=True)
#: For keys a test makes by hand (with the low-level adapter).
KAFKA_PASSWORD = SecretStr("a-kafka-password-for-tests-1234")


class Time:
    """The test's time: every sleep moves the simulator's clock and the client's monotonic one
    by what it asked, so waiting costs nothing and is measured exactly."""

    def __init__(self, sim_clock: ManualClock) -> None:
        self.sim_clock = sim_clock
        self.now = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        self.sim_clock.advance(seconds)


@pytest.fixture
def state(clock: ManualClock) -> SimulatorState:
    return SimulatorState(now=clock)


@pytest.fixture
def time(clock: ManualClock) -> Time:
    return Time(clock)


@pytest.fixture
async def client(state: SimulatorState, time: Time) -> AsyncIterator[StreamkapClient]:
    async with sim_client(
        state, sleep=time.sleep, clock=time.monotonic, activation_timeout=ACTIVATION_TIMEOUT
    ) as client:
        yield client


@pytest.fixture
def keys(client: StreamkapClient) -> ProjectKeyCredentials:
    return client.project_key_credentials


def writes(state: SimulatorState) -> list[tuple[str, str]]:
    return [(call.method, call.path) for call in state.write_calls("/project-keys")]


# --- create --------------------------------------------------------------------------------


async def test_an_api_only_key_is_created_active_with_its_secret(
    keys: ProjectKeyCredentials, state: SimulatorState, time: Time
) -> None:
    made = await keys.create(project_key())
    remote = made.remote
    assert remote.kind is CredentialKind.PROJECT_KEY
    assert remote.state is State.ACTIVE
    assert remote.name == "orders-reader/stream"
    assert remote.key == "orders-reader/stream"  # the marker
    assert remote.role_ids == frozenset({"role-read-only"})
    assert remote.kafka is None
    assert remote.mcp is None
    assert made.kafka is None
    assert made.secret is not None
    assert made.api_client_id == remote.api_client_id is not None
    key = state.project_keys.get(remote.client_id)
    assert key is not None
    assert key.api_secret == made.secret.get_secret_value()
    assert time.sleeps == []  # active at once: nothing waited for


async def test_a_kafka_key_is_waited_for_until_active(
    keys: ProjectKeyCredentials, state: SimulatorState, time: Time
) -> None:
    state.faults = FaultConfig(slow_activation=10)
    made = await keys.create(project_key(kafka=KAFKA))
    assert made.remote.state is State.ACTIVE
    assert 10 <= time.now < 10 + POLL_CAP  # looked at again until active, not much later
    assert max(time.sleeps) <= POLL_CAP
    login = made.kafka
    assert login is not None
    assert login.bootstrap_servers
    assert login.security_protocol == "SASL_SSL"
    assert login.schema_registry_url is not None
    assert same_user("orders-reader/stream", None, login.username)
    assert re.fullmatch(r"orders-reader-[a-z0-9]{4}-[a-z0-9]{4}", login.username)
    key = state.project_keys.get(made.remote.client_id)
    assert key is not None
    assert key.kafka_password == login.password.get_secret_value()
    assert len(login.password.get_secret_value()) >= 32
    remote_kafka = made.remote.kafka
    assert remote_kafka == dataclasses.replace(KAFKA, username=login.username)
    assert made.secret is not None  # API access too


async def test_a_kafka_only_key_has_no_api_secret_and_cannot_be_verified(
    keys: ProjectKeyCredentials,
) -> None:
    made = await keys.create(project_key(roles=(), kafka=KafkaAccess(acls=READS)))
    assert made.secret is None
    assert made.remote.api_client_id is None
    assert made.kafka is not None
    record = SinkRecord(
        "orders-reader",
        "stream",
        None,
        None,
        project_key_id=made.remote.client_id,
        kafka=made.kafka,
    )
    assert await keys.verify(record) is False


async def test_a_manifest_username_is_the_readable_part(keys: ProjectKeyCredentials) -> None:
    kafka = dataclasses.replace(KAFKA, username="orders")
    made = await keys.create(project_key(kafka=kafka))
    assert made.kafka is not None
    assert re.fullmatch(r"orders-[a-z0-9]{4}", made.kafka.username)


async def test_an_mcp_scoped_key_keeps_its_scope(keys: ProjectKeyCredentials) -> None:
    scope = McpScope("read-only", frozenset({"list_topics"}), frozenset({"delete_pipeline"}))
    made = await keys.create(project_key(mcp=scope))
    assert made.remote.mcp == scope
    (listed,) = await keys.list()
    assert listed.mcp == scope


async def test_a_key_that_never_activates_is_given_up_and_left_for_the_engine(
    keys: ProjectKeyCredentials, state: SimulatorState, time: Time
) -> None:
    state.faults = FaultConfig(slow_activation="never")
    with pytest.raises(UnusableCreate) as caught:
        await keys.create(project_key(kafka=KAFKA))
    key_id = caught.value.client_id
    assert f"still creating after {ACTIVATION_TIMEOUT:g} s" in str(caught.value)
    assert time.now == pytest.approx(ACTIVATION_TIMEOUT)
    assert max(time.sleeps) <= POLL_CAP
    key = state.project_keys.get(key_id)
    assert key is not None
    assert key.status == "creating"
    assert ("DELETE", f"/project-keys/{key_id}") not in writes(state)
    for secret in state.project_keys.issued_secrets():
        assert secret not in str(caught.value)
        assert secret not in repr(caught.value)


async def test_verify_logs_in_with_the_records_api_access(keys: ProjectKeyCredentials) -> None:
    made = await keys.create(project_key(kafka=KAFKA))
    assert made.api_client_id is not None
    assert made.secret is not None
    record = SinkRecord(
        "orders-reader",
        "stream",
        made.api_client_id,
        made.secret,
        project_key_id=made.remote.client_id,
        kafka=made.kafka,
    )
    assert await keys.verify(record) is True
    wrong = dataclasses.replace(record, secret=made.kafka.password if made.kafka else None)
    assert await keys.verify(wrong) is False
    # A client credential's record (no project key id) is not this API's to prove.
    assert await keys.verify(dataclasses.replace(record, project_key_id=None)) is False


# --- list ----------------------------------------------------------------------------------


async def test_the_listing_reads_marked_keys_in_detail_and_unmarked_ones_not(
    keys: ProjectKeyCredentials, client: StreamkapClient, state: SimulatorState
) -> None:
    made = await keys.create(project_key(kafka=KAFKA))
    foreign = await client.project_keys.create(
        NewProjectKey(name="hand-made", description="made in the UI", role_ids=("role-admin",))
    )
    state.reset_calls()
    listed = {remote.client_id: remote for remote in await keys.list()}
    assert listed[made.remote.client_id] == made.remote
    other = listed[foreign.project_key_id]
    assert other.key is None
    assert other.kind is CredentialKind.PROJECT_KEY
    reads = [call.path for call in state.calls(method="GET", path_prefix="/project-keys/")]
    assert reads == [f"/project-keys/{made.remote.client_id}"]


async def test_a_listed_kafka_key_shows_its_setup_as_the_manifest_writes_it(
    keys: ProjectKeyCredentials, client: StreamkapClient
) -> None:
    config = KafkaConfig(
        "orders-x-ab12",
        KAFKA_PASSWORD,
        whitelist_ips=("10.1.2.3/8", "2001:db8::1"),
    )
    new = NewProjectKey(name="orders/x", description="[provisioner:orders/x]", kafka=config)
    made = await client.project_keys.create(new)
    (listed,) = await keys.list()
    assert listed.client_id == made.project_key_id
    assert listed.kafka == KafkaAccess(
        allow_ips=frozenset({"10.0.0.0/8", "2001:db8::1/128"}), username="orders-x-ab12"
    )
    assert listed.state is State.CREATING  # read as it is: the listing does not wait


async def test_a_key_gone_between_listing_and_detail_is_left_out(
    state: SimulatorState, clock: ManualClock, time: Time
) -> None:
    app = create_app(state)
    inner = httpx.ASGITransport(app=app)

    class DeletesFirst(httpx.AsyncBaseTransport):
        """Ends the deletion of the key a detail read is about, just before the read."""

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if request.method == "GET" and request.url.path.startswith("/project-keys/"):
                state.project_keys.delete(request.url.path.rsplit("/", 1)[1])
                clock.advance(timedelta(seconds=5))
            return await inner.handle_async_request(request)

    async with sim_client(state, sleep=time.sleep, clock=time.monotonic) as setup:
        await setup.project_key_credentials.create(project_key())
        await setup.project_key_credentials.create(project_key("other"))
    async with sim_client(state, DeletesFirst(), sleep=time.sleep) as racing:
        assert await racing.project_key_credentials.list() == []


# --- update --------------------------------------------------------------------------------


async def test_an_acl_and_allow_list_change_is_one_patch_of_what_differs(
    keys: ProjectKeyCredentials, state: SimulatorState
) -> None:
    made = await keys.create(project_key(kafka=KAFKA))
    key_id = made.remote.client_id
    fewer = dataclasses.replace(
        KAFKA,
        acls=frozenset({AclEntry("TOPIC", "orders.", "PREFIXED", "READ")}),
        allow_ips=frozenset({"192.168.0.0/16"}),
    )
    state.reset_calls()
    assert await keys.update(key_id, project_key(kafka=fewer)) is None  # no new secrets
    assert writes(state) == [("PATCH", f"/project-keys/{key_id}")]
    (listed,) = await keys.list()
    assert made.kafka is not None
    assert listed.kafka == dataclasses.replace(fewer, username=made.kafka.username)
    key = state.project_keys.get(key_id)
    assert key is not None
    assert key.kafka_password == made.kafka.password.get_secret_value()


async def test_a_converged_key_is_not_patched(
    keys: ProjectKeyCredentials, state: SimulatorState
) -> None:
    scope = McpScope("read-only", frozenset(), frozenset({"delete_pipeline"}))
    wanted = project_key(kafka=KAFKA, mcp=scope, description="reads orders")
    made = await keys.create(wanted)
    state.reset_calls()
    assert await keys.update(made.remote.client_id, wanted) is None
    assert writes(state) == []


async def test_name_description_roles_and_scope_are_patched_in_place(
    keys: ProjectKeyCredentials, state: SimulatorState
) -> None:
    made = await keys.create(project_key(description="old words"))
    changed = project_key(
        roles=("role-admin",),
        description="new words",
        mcp=McpScope("full", frozenset({"list_topics"}), frozenset()),
    )
    assert await keys.update(made.remote.client_id, changed) is None
    (listed,) = await keys.list()
    assert listed.description == "new words [provisioner:orders-reader/stream]"
    assert listed.role_ids == frozenset({"role-admin"})
    assert listed.mcp == changed.mcp
    assert listed.api_client_id == made.remote.api_client_id  # the same API access


async def test_adding_kafka_access_returns_the_new_kafka_login(
    keys: ProjectKeyCredentials, state: SimulatorState, time: Time
) -> None:
    made = await keys.create(project_key())
    added = await keys.update(made.remote.client_id, project_key(kafka=KAFKA))
    assert added is not None
    assert added.secret is None  # the API access is unchanged: its secret is the sinks'
    assert added.kafka is not None
    assert added.remote.state is State.ACTIVE  # waited for, as after a create
    assert time.now >= 1  # the simulator's activation delay
    key = state.project_keys.get(made.remote.client_id)
    assert key is not None
    assert key.kafka_password == added.kafka.password.get_secret_value()
    assert added.remote.kafka == dataclasses.replace(KAFKA, username=added.kafka.username)


async def test_adding_api_access_returns_the_new_secret_that_logs_in(
    keys: ProjectKeyCredentials,
) -> None:
    made = await keys.create(project_key(roles=(), kafka=KAFKA))
    added = await keys.update(made.remote.client_id, project_key(kafka=KAFKA))
    assert added is not None
    assert added.kafka is None
    assert added.secret is not None
    assert added.api_client_id is not None
    record = SinkRecord(
        "orders-reader",
        "stream",
        added.api_client_id,
        added.secret,
        project_key_id=made.remote.client_id,
        kafka=made.kafka,
    )
    assert await keys.verify(record) is True


@pytest.mark.parametrize(
    ("before", "after", "why"),
    [
        (project_key(kafka=KAFKA), project_key(), "Kafka access cannot be removed"),
        (project_key(kafka=KAFKA), project_key(roles=(), kafka=KAFKA), "API access cannot be"),
        (project_key(), project_key(roles=(), permissions=("p.read",)), "roles cannot become"),
        (
            project_key(kafka=KAFKA),
            project_key(kafka=dataclasses.replace(KAFKA, username="renamed")),
            "Kafka username cannot change",
        ),
        (
            project_key(kafka=KAFKA),
            project_key(kafka=dataclasses.replace(KAFKA, schema_registry=False)),
            "Schema Registry",
        ),
    ],
)
async def test_what_only_a_replace_can_do_is_refused_without_a_call(
    keys: ProjectKeyCredentials,
    state: SimulatorState,
    before: DesiredCredential,
    after: DesiredCredential,
    why: str,
) -> None:
    made = await keys.create(before)
    state.reset_calls()
    with pytest.raises(PatchUnsupported, match=why):
        await keys.update(made.remote.client_id, after)
    assert writes(state) == []


async def test_a_profile_the_manifest_leaves_out_is_left_as_it_is(
    keys: ProjectKeyCredentials, state: SimulatorState
) -> None:
    """No PATCH clears a profile, and none is asked for: the key keeps its own."""
    made = await keys.create(project_key(mcp=McpScope("full")))
    state.reset_calls()
    assert await keys.update(made.remote.client_id, project_key()) is None
    assert writes(state) == []


async def test_a_key_still_creating_is_not_patched(
    keys: ProjectKeyCredentials, client: StreamkapClient, state: SimulatorState
) -> None:
    config = KafkaConfig("orders-y-ab12", KAFKA_PASSWORD)
    made = await client.project_keys.create(NewProjectKey(name="orders/y", kafka=config))
    state.reset_calls()
    with pytest.raises(ProjectKeyBusy, match="is creating"):
        await keys.update(made.project_key_id, project_key(kafka=KAFKA))
    assert writes(state) == []


# --- delete --------------------------------------------------------------------------------


async def test_delete_starts_the_deletion_and_a_gone_key_counts_as_deleted(
    keys: ProjectKeyCredentials, state: SimulatorState, clock: ManualClock
) -> None:
    made = await keys.create(project_key())
    await keys.delete(made.remote.client_id)
    (listed,) = await keys.list()
    assert listed.state is State.DELETING
    clock.advance(5)
    assert await keys.list() == []
    await keys.delete(made.remote.client_id)  # already gone: no error
