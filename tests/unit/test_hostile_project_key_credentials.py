"""The project keys' `CredentialApi` against a hostile `/project-keys` server on 127.0.0.1: a key
stuck in `creating`, a create answer without secrets, a PATCH answer without the Kafka login it
added, a taken Kafka username. Each ends in a clear error that names the key the engine must
delete (the adapter deletes nothing itself) and no secret: not the API secret, not the Kafka
password the adapter chose."""

from __future__ import annotations

import pytest

from provisioner.errors import KafkaUsernameTaken, UnusableAnswer, UnusableCreate
from provisioner.logs import forget_secrets
from provisioner.model import AclEntry, KafkaAccess
from tests.support.factories import project_key
from tests.support.hostile import Answer, Request, hostile_server, json_answer
from tests.support.hostile_project_keys import (
    API_SECRET,
    KEY_ID,
    FakeTime,
    ProjectKeysApi,
    client_of,
    detail,
    echo_body,
    file_for,
)

pytestmark = pytest.mark.anyio

KAFKA = KafkaAccess(acls=frozenset({AclEntry("TOPIC", "orders.", "PREFIXED", "READ")}))
NAME, MARKED = "orders-reader/stream", "[provisioner:orders-reader/stream]"


@pytest.fixture(autouse=True)
def _no_secret_known_yet() -> None:
    """Each test proves its own registration: none left over from an earlier one."""
    forget_secrets()


def sent_password(api: ProjectKeysApi) -> str:
    """The Kafka password the adapter chose and sent (in the create or the PATCH)."""
    for body in api.bodies:
        if isinstance(body, dict) and body.get("kafka_config"):
            return str(body["kafka_config"]["password"])
    raise AssertionError("no Kafka password was sent")


def assert_no_secret(error: BaseException, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in str(error)
        assert secret not in repr(error)


def creating(request: Request) -> Answer:
    return json_answer(200, detail(status="creating", name=NAME, description=MARKED))


async def test_a_key_stuck_in_creating_is_unusable_and_left_for_the_engine_to_delete() -> None:
    api = ProjectKeysApi(create=lambda r: json_answer(201, file_for(r)), detail=creating)
    time = FakeTime()
    with hostile_server(api) as server:
        async with client_of(
            server.url, sleep=time.sleep, clock=time.clock, activation_timeout=30
        ) as client:
            with pytest.raises(UnusableCreate) as caught:
                await client.project_key_credentials.create(project_key(kafka=KAFKA))
    assert caught.value.client_id == KEY_ID  # the engine deletes this one
    assert "still creating after 30 s" in str(caught.value)
    assert time.now == pytest.approx(30)
    assert not [call for call in api.calls if call[0] == "DELETE"]
    reads = [call for call in api.calls if call == ("GET", f"/project-keys/{KEY_ID}")]
    assert 5 <= len(reads) <= 12  # looked at again and again, with a growing, capped pause
    assert_no_secret(caught.value, API_SECRET, sent_password(api))


async def test_a_create_answer_without_the_kafka_login_is_unusable() -> None:
    api = ProjectKeysApi(create=lambda r: json_answer(201, file_for(r, kafka=None)))
    with hostile_server(api) as server:
        async with client_of(server.url) as client:
            with pytest.raises(UnusableCreate) as caught:
                await client.project_key_credentials.create(project_key(kafka=KAFKA))
    assert caught.value.client_id == KEY_ID
    assert "no kafka credentials" in str(caught.value)
    assert [method for method, _ in api.calls] == ["POST"]  # nothing deleted, nothing read
    assert_no_secret(caught.value, API_SECRET, sent_password(api))


async def test_a_create_answer_without_the_api_secret_is_unusable() -> None:
    def answer(request: Request) -> Answer:
        return json_answer(201, file_for(request, api={"client_id": "cc_hostile"}))

    api = ProjectKeysApi(create=answer)
    with hostile_server(api) as server:
        async with client_of(server.url) as client:
            with pytest.raises(UnusableCreate, match="'client_secret' is missing") as caught:
                await client.project_key_credentials.create(project_key(kafka=KAFKA))
    assert_no_secret(caught.value, sent_password(api))


async def test_a_key_made_with_another_name_is_unusable() -> None:
    api = ProjectKeysApi(
        create=lambda r: json_answer(201, file_for(r)),
        detail=lambda r: json_answer(200, detail(name="someone-else", description=MARKED)),
    )
    with hostile_server(api) as server:
        async with client_of(server.url) as client:
            with pytest.raises(UnusableCreate, match="became 'someone-else'") as caught:
                await client.project_key_credentials.create(project_key())
    assert caught.value.client_id == KEY_ID
    assert_no_secret(caught.value, API_SECRET)


async def test_a_patch_answer_without_the_kafka_login_it_added_is_unusable() -> None:
    api_only = detail(name=NAME, description=MARKED)
    api = ProjectKeysApi(
        detail=lambda r: json_answer(200, api_only),
        patch=lambda r: json_answer(200, api_only),  # no new_kafka_credentials
    )
    with hostile_server(api) as server:
        async with client_of(server.url) as client:
            with pytest.raises(UnusableAnswer) as caught:
                await client.project_key_credentials.update(KEY_ID, project_key(kafka=KAFKA))
    assert "no new_kafka_credentials" in str(caught.value)
    (patch,) = [body for body in api.bodies if body and "kafka_config" in body]
    assert set(patch) == {"kafka_config"}  # only what differs was sent
    assert_no_secret(caught.value, sent_password(api))


async def test_a_taken_kafka_username_is_a_clear_error_without_the_password() -> None:
    api = ProjectKeysApi(create=echo_body(409))  # the 409 repeats the whole request
    with hostile_server(api) as server:
        async with client_of(server.url) as client:
            with pytest.raises(KafkaUsernameTaken) as caught:
                await client.project_key_credentials.create(project_key(kafka=KAFKA))
    assert "Kafka username asked for is already taken" in str(caught.value)
    assert [method for method, _ in api.calls] == ["POST"]  # not retried
    assert api.bodies[0]["kafka_config"]["username"].startswith("orders-reader-")
    assert_no_secret(caught.value, sent_password(api))
