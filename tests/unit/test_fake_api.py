"""The independent fake of the documented API (tests/support/fake_api) speaks the shapes the
provisioner's own adapters read: `StreamkapClient.credentials` and `.project_keys` against it,
over a real loopback socket."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from pydantic import SecretStr

from provisioner.errors import ApiError, KafkaUsernameTaken
from provisioner.streamkap import ApiConfig, Requests, StreamkapClient
from provisioner.streamkap.client_credentials import login_works
from provisioner.streamkap.project_key_answers import KafkaAcl
from provisioner.streamkap.project_key_bodies import KafkaConfig, NewProjectKey, ProjectKeyChange
from tests.support.factories import desired, no_sleep
from tests.support.fake_api import (
    ACTIVE,
    ADMIN_CLIENT_ID,
    ADMIN_SECRET,
    CREATING,
    DELETE_FAILED,
    DELETING,
    FakeApi,
    ServedFake,
    serve_fake,
)

pytestmark = pytest.mark.anyio

READ_ONLY, DATA_ADMIN = "fr-3", "fr-2"
PASSWORD = "kafka-password-0123456789"
ACLS = (KafkaAcl("orders.", "READ", "PREFIXED"), KafkaAcl("orders-app", "READ", "LITERAL", "GROUP"))
START = datetime(2030, 1, 1, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def served(clock: Clock) -> Iterator[ServedFake]:
    with serve_fake(FakeApi(clock=clock)) as served:
        yield served


@pytest.fixture
def fake(served: ServedFake) -> FakeApi:
    return served.fake


@pytest.fixture
async def client(served: ServedFake) -> AsyncIterator[StreamkapClient]:
    config = ApiConfig(
        served.url, client_id=ADMIN_CLIENT_ID, secret=SecretStr(ADMIN_SECRET), max_attempts=2
    )
    async with StreamkapClient(Requests(config, sleep=no_sleep)) as api:
        yield api


def kafka(username: str = "orders-app", whitelist: tuple[str, ...] = ()) -> KafkaConfig:
    return KafkaConfig(username, SecretStr(PASSWORD), ACLS, whitelist, schema_registry=True)


def both(name: str = "orders/app", username: str = "orders-app") -> NewProjectKey:
    return NewProjectKey(name=name, role_ids=(READ_ONLY,), kafka=kafka(username, ("10.0.0.0/8",)))


# --- roles and client credentials ------------------------------------------------------------


async def test_roles_are_listed_as_the_product_names_them(client: StreamkapClient) -> None:
    roles = await client.list_roles()
    assert {role.name for role in roles} == {"Admin", "Data Admin", "Read Only"}


async def test_a_client_credential_lives_and_dies_through_the_adapter(
    client: StreamkapClient, fake: FakeApi
) -> None:
    made = await client.credentials.create(desired("ingest", roles=(READ_ONLY,)))
    assert made.secret is not None
    stored = fake.client_credentials[made.remote.client_id]
    assert made.secret.get_secret_value() == stored.secret
    (listed,) = await client.credentials.list()
    assert listed.role_ids == {READ_ONLY}
    assert listed.service_id == "fake-project"  # computed when the create names none
    assert await login_works(client.requests, listed.client_id, made.secret)
    assert not await login_works(client.requests, listed.client_id, SecretStr("wrong-secret"))

    await client.credentials.update(listed.client_id, desired("ingest", roles=(DATA_ADMIN,)))
    assert client.credentials.patch_supported is True
    assert stored.role_ids == [DATA_ADMIN]
    await client.credentials.delete(listed.client_id)
    await client.credentials.delete(listed.client_id)  # 404: already gone
    assert await client.credentials.list() == []
    assert ("DELETE", f"/auth/client-credentials/{listed.client_id}") in fake.calls
    assert fake.calls[0] == ("POST", "/auth/access-token")


async def test_roles_and_permissions_together_are_refused(client: StreamkapClient) -> None:
    both_kinds = desired("ingest", roles=(READ_ONLY,), permissions=("p.read",))
    with pytest.raises(ApiError) as refused:
        await client.credentials.create(both_kinds)
    assert refused.value.status == 422


async def test_every_call_but_the_logins_needs_a_token(served: ServedFake) -> None:
    async with httpx.AsyncClient(base_url=served.url) as plain:
        assert (await plain.get("/project-keys")).status_code == 401
        bad = {"Authorization": "Bearer forged"}
        assert (await plain.get("/auth/roles", headers=bad)).status_code == 401
        login = {"client_id": ADMIN_CLIENT_ID, "secret": ADMIN_SECRET}
        answer = (await plain.post("/auth/access-token", json=login)).json()
        assert answer["expiresIn"] == 3600
        refreshed = await plain.post(
            "/auth/access-token/refresh", json={"refresh_token": answer["refreshToken"]}
        )
        token = refreshed.json()["accessToken"]
        headers = {"Authorization": f"Bearer {token}"}
        assert (await plain.get("/project-keys", headers=headers)).json() == []


# --- project keys ----------------------------------------------------------------------------


async def test_a_key_with_kafka_is_creating_then_active_after_one_read(
    client: StreamkapClient, fake: FakeApi
) -> None:
    made = await client.project_keys.create(both())
    assert made.api is not None
    assert made.kafka is not None
    assert made.kafka.username == "orders-app"
    assert made.kafka.password.get_secret_value() == PASSWORD
    assert made.kafka.schema_registry_url is not None
    key = fake.keys[made.project_key_id]
    assert made.api.client_secret.get_secret_value() == key.api_secret

    (listed,) = await client.project_keys.list()
    assert (listed.status, listed.api_client_id) == (CREATING, made.api.client_id)
    detail = await client.project_keys.detail(made.project_key_id)
    assert detail is not None
    assert detail.status == ACTIVE
    assert detail.kafka_acls == ACLS
    assert detail.whitelist_ips == ("10.0.0.0/8",)
    assert detail.role_ids == {READ_ONLY}
    assert detail.kafka_username == "orders-app"


async def test_activation_waits_as_many_reads_as_configured() -> None:
    with serve_fake(FakeApi(activation_reads=3)) as served:
        config = ApiConfig(served.url, client_id=ADMIN_CLIENT_ID, secret=SecretStr(ADMIN_SECRET))
        async with StreamkapClient(Requests(config, sleep=no_sleep)) as client:
            made = await client.project_keys.create(both())
            seen = [(await client.project_keys.list())[0].status for _ in range(4)]
            assert seen == [CREATING, CREATING, CREATING, ACTIVE]
            assert made.project_key_id in served.fake.keys


async def test_an_api_only_key_is_active_at_once(client: StreamkapClient) -> None:
    made = await client.project_keys.create(NewProjectKey(name="api", role_ids=(READ_ONLY,)))
    assert made.kafka is None
    detail = await client.project_keys.detail(made.project_key_id)
    assert detail is not None
    assert (detail.status, detail.kafka_username, detail.whitelist_ips) == (ACTIVE, None, ())


async def test_a_login_with_the_keys_api_client_moves_last_used_at(
    client: StreamkapClient, clock: Clock, fake: FakeApi
) -> None:
    made = await client.project_keys.create(both())
    assert made.api is not None
    (before,) = await client.project_keys.list()
    assert before.last_used_at is None
    clock.now = START + timedelta(hours=2)
    assert await login_works(client.requests, made.api.client_id, made.api.client_secret)
    (after,) = await client.project_keys.list()
    assert after.last_used_at == START + timedelta(hours=2)
    assert fake.logins[-1] == made.api.client_id
    assert not await login_works(client.requests, made.api.client_id, SecretStr("not-it"))


async def test_a_taken_kafka_username_is_409(client: StreamkapClient) -> None:
    await client.project_keys.create(both("one"))
    with pytest.raises(KafkaUsernameTaken):
        await client.project_keys.create(both("two"))


@pytest.mark.parametrize(
    "new",
    [
        NewProjectKey(name="no-access"),
        NewProjectKey(name="", role_ids=(READ_ONLY,)),
        NewProjectKey(name="x" * 101, role_ids=(READ_ONLY,)),
        NewProjectKey(name="both", role_ids=(READ_ONLY,), permission_ids=("p.read",)),
        NewProjectKey(name="unknown-role", role_ids=("no-such-role",)),
        NewProjectKey(name="upper", kafka=kafka("Orders")),
        NewProjectKey(name="dash", kafka=kafka("orders-")),
        NewProjectKey(name="long", kafka=kafka("a" * 25)),
        NewProjectKey(name="ips", kafka=kafka(whitelist=("10.0.0.300",))),
        NewProjectKey(
            name="short", kafka=KafkaConfig("orders-app", SecretStr("eleven-char"), ACLS)
        ),
        NewProjectKey(
            name="group-write",
            kafka=KafkaConfig(
                "orders-app", SecretStr(PASSWORD), (KafkaAcl("g", "WRITE", "LITERAL", "GROUP"),)
            ),
        ),
        NewProjectKey(
            name="pattern",
            kafka=KafkaConfig("orders-app", SecretStr(PASSWORD), (KafkaAcl("t", "READ", "MATCH"),)),
        ),
        NewProjectKey(name="profile", role_ids=(READ_ONLY,), tool_profile="everything"),
    ],
    ids=lambda new: new.name or "empty-name",
)
async def test_documented_rules_are_422(
    client: StreamkapClient, fake: FakeApi, new: NewProjectKey
) -> None:
    with pytest.raises(ApiError) as refused:
        await client.project_keys.create(new)
    assert refused.value.status == 422
    assert fake.keys == {}


async def test_a_longest_username_and_password_are_taken(client: StreamkapClient) -> None:
    config = KafkaConfig("a" + "-b" * 11 + "c", SecretStr("p" * 128), ACLS)
    made = await client.project_keys.create(NewProjectKey(name="edge", kafka=config))
    assert made.kafka is not None
    assert len(made.kafka.username) == 24


async def test_patch_adds_kafka_to_an_api_only_key_with_its_new_password(
    client: StreamkapClient, fake: FakeApi
) -> None:
    made = await client.project_keys.create(NewProjectKey(name="api", role_ids=(READ_ONLY,)))
    patched = await client.project_keys.patch(made.project_key_id, ProjectKeyChange(kafka=kafka()))
    assert patched.new_kafka_credentials is not None
    assert patched.new_kafka_credentials.password.get_secret_value() == PASSWORD
    assert patched.detail.status == CREATING  # the Kafka user is set up asynchronously
    assert fake.keys[made.project_key_id].kafka_username == "orders-app"


async def test_patch_adds_api_access_to_a_kafka_only_key(
    client: StreamkapClient, fake: FakeApi
) -> None:
    made = await client.project_keys.create(NewProjectKey(name="kafka", kafka=kafka()))
    key_id = made.project_key_id
    add_api = ProjectKeyChange(role_ids=(READ_ONLY,), adds_api=True)
    with pytest.raises(ApiError) as refused:
        await client.project_keys.patch(key_id, add_api)  # still creating
    assert refused.value.status == 400
    await client.project_keys.list()  # the read after which it is active
    patched = await client.project_keys.patch(key_id, add_api)
    assert patched.new_api_credentials is not None
    assert patched.detail.api_client_id == patched.new_api_credentials.client_id
    secret = patched.new_api_credentials.client_secret
    assert secret.get_secret_value() == fake.keys[key_id].api_secret
    assert await login_works(client.requests, patched.detail.api_client_id, secret)


async def test_patch_changes_roles_acls_and_allow_list_in_place(client: StreamkapClient) -> None:
    made = await client.project_keys.create(both())
    await client.project_keys.list()
    change = ProjectKeyChange(
        role_ids=(DATA_ADMIN,),
        kafka_acls=(KafkaAcl("payments", "WRITE", "LITERAL"),),
        whitelist_ips=("192.168.0.0/16", "10.1.2.3"),
        kafka_password=SecretStr("another-password-1"),
    )
    patched = await client.project_keys.patch(made.project_key_id, change)
    assert (patched.new_api_credentials, patched.new_kafka_credentials) == (None, None)
    assert patched.detail.role_ids == {DATA_ADMIN}
    assert patched.detail.kafka_acls == (KafkaAcl("payments", "WRITE", "LITERAL"),)
    assert patched.detail.whitelist_ips == ("192.168.0.0/16", "10.1.2.3")
    for refused_change in (
        ProjectKeyChange(permission_ids=("p.read",)),  # permissions cannot change
        ProjectKeyChange(kafka=kafka("other-user")),  # it has Kafka access already
    ):
        with pytest.raises(ApiError) as refused:
            await client.project_keys.patch(made.project_key_id, refused_change)
        assert refused.value.status == 400


async def test_deletion_is_deleting_then_gone(client: StreamkapClient, fake: FakeApi) -> None:
    made = await client.project_keys.create(NewProjectKey(name="api", role_ids=(READ_ONLY,)))
    await client.project_keys.delete(made.project_key_id)
    assert [key.status for key in await client.project_keys.list()] == [DELETING]
    assert await client.project_keys.list() == []
    assert await client.project_keys.detail(made.project_key_id) is None
    await client.project_keys.delete(made.project_key_id)  # 404: gone
    assert fake.keys == {}


async def test_a_chosen_deletion_fails_and_refuses_patches_until_retried(
    client: StreamkapClient, fake: FakeApi
) -> None:
    made = await client.project_keys.create(NewProjectKey(name="api", role_ids=(READ_ONLY,)))
    key_id = made.project_key_id
    fake.delete_fails.add(key_id)
    await client.project_keys.delete(key_id)
    detail = await client.project_keys.detail(key_id)
    assert detail is not None
    assert detail.status == DELETING
    (listed,) = await client.project_keys.list()
    assert listed.status == DELETE_FAILED
    with pytest.raises(ApiError) as refused:
        await client.project_keys.patch(key_id, ProjectKeyChange(name="renamed"))
    assert refused.value.status == 400
    fake.delete_fails.clear()
    await client.project_keys.delete(key_id)  # a new DELETE tries again
    await client.project_keys.list()
    assert await client.project_keys.list() == []


async def test_a_username_stays_taken_until_its_key_is_gone(client: StreamkapClient) -> None:
    made = await client.project_keys.create(both("one"))
    await client.project_keys.delete(made.project_key_id)
    with pytest.raises(KafkaUsernameTaken):
        await client.project_keys.create(both("two"))
    assert [key.status for key in await client.project_keys.list()] == [DELETING]
    again = await client.project_keys.create(both("two"))
    assert again.kafka is not None
