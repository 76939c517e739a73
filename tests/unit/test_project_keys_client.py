"""The project keys adapter (`StreamkapClient.project_keys`) against the in-process simulator:
create, list, detail, patch and delete, statuses on a manual clock, and `last_used_at` moved by
a login with the key's own API credential."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from pydantic import SecretStr

from provisioner.errors import AmbiguousCreate, ApiError, KafkaUsernameTaken
from provisioner.logs import redact
from provisioner.simulator import FaultConfig, ManualClock, SimulatorState
from provisioner.streamkap.client import StreamkapClient
from provisioner.streamkap.client_credentials import login_works
from provisioner.streamkap.project_key_answers import KafkaAcl
from provisioner.streamkap.project_key_bodies import KafkaConfig, NewProjectKey, ProjectKeyChange
from tests.support.factories import no_sleep, sim_client

pytestmark = pytest.mark.anyio

PASSWORD = "kafka-password-0123456789abcdef"
READ_ORDERS = (
    KafkaAcl("orders.", "READ", "PREFIXED"),
    KafkaAcl("orders-reader", "READ", "LITERAL", "GROUP"),
)


def kafka(username: str = "orders-reader-g1", password: str = PASSWORD) -> KafkaConfig:
    return KafkaConfig(username, SecretStr(password), READ_ORDERS, ("10.0.0.0/8",), True)


def api_only(name: str = "api-only") -> NewProjectKey:
    return NewProjectKey(name=name, description="d", role_ids=("role-read-only",))


@pytest.fixture
def state(clock: ManualClock) -> SimulatorState:
    state = SimulatorState(now=clock)
    state.project_keys.activation_delay = 5
    state.project_keys.deletion_delay = 5
    return state


@pytest.fixture
async def client(state: SimulatorState) -> AsyncIterator[StreamkapClient]:
    async with sim_client(state, sleep=no_sleep, max_attempts=2) as api:
        yield api


async def test_an_api_only_key_is_created_active_with_its_secret_once(
    client: StreamkapClient, state: SimulatorState
) -> None:
    made = await client.project_keys.create(api_only())
    assert made.kafka is None
    assert made.api is not None
    secret = made.api.client_secret.get_secret_value()
    assert secret == state.project_keys.get(made.project_key_id).api_secret  # type: ignore[union-attr]
    assert secret not in repr(made)
    assert redact(secret) == "[redacted]"
    [listed] = await client.project_keys.list()
    assert (listed.id, listed.status, listed.api_client_id) == (
        made.project_key_id,
        "active",
        made.api.client_id,
    )
    assert listed.role_ids == {"role-read-only"}
    assert listed.kafka_username is None


async def test_a_kafka_key_is_creating_until_the_activation_delay_has_passed(
    client: StreamkapClient, clock: ManualClock
) -> None:
    made = await client.project_keys.create(NewProjectKey(name="reader", kafka=kafka()))
    assert made.api is None
    assert made.kafka is not None
    assert made.kafka.password.get_secret_value() == PASSWORD
    assert made.kafka.security_protocol == "SASL_SSL"
    assert made.kafka.schema_registry_url is not None
    before = await client.project_keys.detail(made.project_key_id)
    assert before is not None
    assert before.status == "creating"
    clock.advance(5)
    after = await client.project_keys.detail(made.project_key_id)
    assert after is not None
    assert after.status == "active"
    assert after.kafka_acls == READ_ORDERS
    assert after.whitelist_ips == ("10.0.0.0/8",)
    assert after.kafka_username == "orders-reader-g1"
    assert after.kafka_proxy_endpoint is not None
    assert after.schema_proxy_endpoint is not None


async def test_a_login_with_the_keys_api_credential_moves_last_used_at(
    client: StreamkapClient, clock: ManualClock
) -> None:
    made = await client.project_keys.create(api_only())
    assert made.api is not None
    [unused] = await client.project_keys.list()
    assert unused.last_used_at is None
    clock.advance(timedelta(hours=2))
    assert await login_works(client.requests, made.api.client_id, made.api.client_secret)
    [used] = await client.project_keys.list()
    assert used.last_used_at == clock()


async def test_the_mcp_scoping_is_kept_and_read_back(client: StreamkapClient) -> None:
    scoped = NewProjectKey(
        name="agent",
        role_ids=("role-read-only",),
        tool_profile="read-only",
        allowed_tools=("list_pipelines",),
        blocked_tools=("delete_pipeline",),
    )
    made = await client.project_keys.create(scoped)
    key = await client.project_keys.detail(made.project_key_id)
    assert key is not None
    assert (key.tool_profile, key.allowed_tools, key.blocked_tools) == (
        "read-only",
        ("list_pipelines",),
        ("delete_pipeline",),
    )


async def test_a_patch_changes_name_roles_and_scoping_in_place(client: StreamkapClient) -> None:
    made = await client.project_keys.create(api_only())
    change = ProjectKeyChange(
        name="renamed", description="new", role_ids=("role-data-admin",), tool_profile="full"
    )
    patched = await client.project_keys.patch(made.project_key_id, change)
    assert patched.new_api_credentials is None
    assert patched.new_kafka_credentials is None
    assert patched.detail.name == "renamed"
    assert patched.detail.description == "new"
    assert patched.detail.role_ids == {"role-data-admin"}
    assert patched.detail.tool_profile == "full"
    assert made.api is not None
    assert patched.detail.api_client_id == made.api.client_id  # the same credential


async def test_a_patch_adding_kafka_access_delivers_the_new_kafka_credentials(
    client: StreamkapClient,
) -> None:
    made = await client.project_keys.create(api_only())
    patched = await client.project_keys.patch(made.project_key_id, ProjectKeyChange(kafka=kafka()))
    added = patched.new_kafka_credentials
    assert added is not None
    assert added.username == "orders-reader-g1"
    assert added.password.get_secret_value() == PASSWORD
    assert patched.detail.status == "creating"  # the Kafka user is set up asynchronously


async def test_a_patch_adding_api_access_delivers_credentials_that_log_in(
    client: StreamkapClient, clock: ManualClock
) -> None:
    made = await client.project_keys.create(NewProjectKey(name="reader", kafka=kafka()))
    clock.advance(5)
    adding = ProjectKeyChange(role_ids=("role-read-only",), adds_api=True)
    patched = await client.project_keys.patch(made.project_key_id, adding)
    added = patched.new_api_credentials
    assert added is not None
    assert await login_works(client.requests, added.client_id, added.client_secret)
    assert redact(added.client_secret.get_secret_value()) == "[redacted]"


async def test_permissions_cannot_change_after_creation(client: StreamkapClient) -> None:
    made = await client.project_keys.create(NewProjectKey(name="p", permission_ids=("perm-1",)))
    with pytest.raises(ApiError) as caught:
        await client.project_keys.patch(
            made.project_key_id, ProjectKeyChange(permission_ids=("perm-2",))
        )
    assert caught.value.status == 400


async def test_a_patch_while_creating_is_refused(client: StreamkapClient) -> None:
    made = await client.project_keys.create(NewProjectKey(name="reader", kafka=kafka()))
    with pytest.raises(ApiError) as caught:
        await client.project_keys.patch(made.project_key_id, ProjectKeyChange(name="x"))
    assert caught.value.status == 400


async def test_a_kafka_password_change_is_sent_and_registered(
    client: StreamkapClient, clock: ManualClock, state: SimulatorState
) -> None:
    made = await client.project_keys.create(NewProjectKey(name="reader", kafka=kafka()))
    clock.advance(5)
    new_password = "another-kafka-password-42"
    change = ProjectKeyChange(kafka_password=SecretStr(new_password))
    await client.project_keys.patch(made.project_key_id, change)
    assert state.project_keys.get(made.project_key_id).kafka_password == new_password  # type: ignore[union-attr]
    assert redact(new_password) == "[redacted]"


async def test_a_deleted_key_is_deleting_then_gone(
    client: StreamkapClient, clock: ManualClock
) -> None:
    made = await client.project_keys.create(api_only())
    await client.project_keys.delete(made.project_key_id)
    deleting = await client.project_keys.detail(made.project_key_id)
    assert deleting is not None
    assert deleting.status == "deleting"
    clock.advance(5)
    assert await client.project_keys.detail(made.project_key_id) is None
    assert await client.project_keys.list() == []
    await client.project_keys.delete(made.project_key_id)  # already gone: no error


async def test_a_failed_delete_is_reported_as_delete_failed_and_can_be_retried(
    client: StreamkapClient, clock: ManualClock, state: SimulatorState
) -> None:
    made = await client.project_keys.create(api_only())
    state.update_faults(project_key_delete_failed_rate=1.0)
    await client.project_keys.delete(made.project_key_id)
    clock.advance(5)
    [failed] = await client.project_keys.list()
    assert failed.status == "delete_failed"
    state.update_faults(project_key_delete_failed_rate=0.0)
    await client.project_keys.delete(made.project_key_id)
    clock.advance(5)
    assert await client.project_keys.list() == []


async def test_a_taken_kafka_username_raises_kafka_username_taken(
    client: StreamkapClient,
) -> None:
    await client.project_keys.create(NewProjectKey(name="first", kafka=kafka()))
    with pytest.raises(KafkaUsernameTaken):
        await client.project_keys.create(NewProjectKey(name="second", kafka=kafka()))


async def test_a_create_whose_answer_is_lost_is_ambiguous_and_not_repeated(
    client: StreamkapClient, state: SimulatorState
) -> None:
    state.update_faults(drop_after_create_rate=1.0)
    with pytest.raises(AmbiguousCreate):
        await client.project_keys.create(api_only())
    assert len(state.write_calls("/project-keys")) == 1
    assert len(state.project_keys.live()) == 1  # it was made all the same


async def test_the_slow_activation_fault_can_keep_a_key_creating_for_ever(
    client: StreamkapClient, clock: ManualClock, state: SimulatorState
) -> None:
    state.faults = FaultConfig(slow_activation="never")
    made = await client.project_keys.create(NewProjectKey(name="reader", kafka=kafka()))
    clock.advance(timedelta(days=30))
    key = await client.project_keys.detail(made.project_key_id)
    assert key is not None
    assert key.status == "creating"
