"""The project keys adapter against a hostile `/project-keys` server on 127.0.0.1: answers
without the secrets they must carry, a taken Kafka username, a PATCH that loses the credentials
it added, and errors that echo the password sent. Each ends in a clear error with no secret."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from provisioner.errors import ApiError, KafkaUsernameTaken, UnusableAnswer, UnusableCreate
from provisioner.logs import forget_secrets, redact
from provisioner.streamkap.project_key_bodies import KafkaConfig, ProjectKeyChange
from tests.support.hostile import hostile_server, json_answer
from tests.support.hostile_project_keys import (
    API_SECRET,
    KEY_ID,
    PASSWORD,
    ProjectKeysApi,
    client_of,
    detail,
    echo_body,
    kafka_key,
)

pytestmark = pytest.mark.anyio

API_PART = {"client_id": "cc_hostile", "client_secret": API_SECRET}


@pytest.fixture(autouse=True)
def _no_secret_known_yet() -> None:
    """Each test proves its own registration: none left over from an earlier one."""
    forget_secrets()


async def test_a_create_answer_without_the_kafka_secrets_is_unusable_and_names_the_key() -> None:
    answer = {"project_key_id": KEY_ID, "api": API_PART, "kafka": None}
    api = ProjectKeysApi(create=lambda request: json_answer(201, answer))
    with hostile_server(api) as server:
        async with client_of(server.url) as client:
            with pytest.raises(UnusableCreate) as caught:
                await client.project_keys.create(kafka_key())
    assert caught.value.client_id == KEY_ID  # so the caller deletes it
    message = str(caught.value)
    assert "no kafka credentials" in message
    assert API_SECRET not in message
    assert PASSWORD not in message
    assert redact(f"x {API_SECRET} y") == "x [redacted] y"  # registered when parsed


async def test_a_create_answer_without_the_api_secret_is_unusable() -> None:
    kafka = {"username": "orders-reader-g1", "password": PASSWORD, "bootstrap_servers": "k:9094"}
    answer = {"project_key_id": KEY_ID, "api": {"client_id": "cc_hostile"}, "kafka": kafka}
    api = ProjectKeysApi(create=lambda request: json_answer(201, answer))
    with hostile_server(api) as server:
        async with client_of(server.url) as client:
            with pytest.raises(UnusableCreate) as caught:
                await client.project_keys.create(kafka_key())
    assert caught.value.client_id == KEY_ID
    assert "'client_secret' is missing" in str(caught.value)
    assert PASSWORD not in str(caught.value)


async def test_a_create_answer_with_neither_access_says_both_are_missing() -> None:
    answer = {"project_key_id": KEY_ID}
    api = ProjectKeysApi(create=lambda request: json_answer(201, answer))
    with hostile_server(api) as server:
        async with client_of(server.url) as client:
            with pytest.raises(UnusableCreate) as caught:
                await client.project_keys.create(kafka_key())
    assert "no api credentials and no kafka credentials" in str(caught.value)


async def test_a_taken_kafka_username_is_a_clear_error_without_the_password() -> None:
    api = ProjectKeysApi(create=echo_body(409))  # the 409 repeats the whole request
    with hostile_server(api) as server:
        async with client_of(server.url) as client:
            with pytest.raises(KafkaUsernameTaken) as caught:
                await client.project_keys.create(kafka_key())
    assert len(api.bodies) == 1  # a refusal is not retried
    message = str(caught.value)
    assert "HTTP 409" in message
    assert "Kafka username asked for is already taken" in message
    assert PASSWORD not in message
    assert "[redacted]" in message


async def test_a_taken_kafka_username_on_a_patch_is_the_same_clear_error() -> None:
    api = ProjectKeysApi(patch=echo_body(409))
    adding = ProjectKeyChange(kafka=KafkaConfig("orders-reader-g1", SecretStr(PASSWORD)))
    with hostile_server(api) as server:
        async with client_of(server.url) as client:
            with pytest.raises(KafkaUsernameTaken) as caught:
                await client.project_keys.patch(KEY_ID, adding)
    assert PASSWORD not in str(caught.value)


async def test_a_patch_that_adds_kafka_without_new_kafka_credentials_is_unusable() -> None:
    api = ProjectKeysApi(patch=lambda request: json_answer(200, detail()))
    adding = ProjectKeyChange(kafka=KafkaConfig("orders-reader-g1", SecretStr(PASSWORD)))
    with hostile_server(api) as server:
        async with client_of(server.url) as client:
            with pytest.raises(UnusableAnswer) as caught:
                await client.project_keys.patch(KEY_ID, adding)
    message = str(caught.value)
    assert f"PATCH /project-keys/{KEY_ID}" in message
    assert "Kafka access was added but the answer carries no new_kafka_credentials" in message
    assert api.bodies[0]["kafka_config"]["password"] == PASSWORD  # it was sent, and only there
    assert PASSWORD not in message


async def test_a_patch_that_adds_api_access_without_new_api_credentials_is_unusable() -> None:
    api = ProjectKeysApi(patch=lambda request: json_answer(200, detail()))
    adding = ProjectKeyChange(role_ids=("role-read-only",), adds_api=True)
    with hostile_server(api) as server:
        async with client_of(server.url) as client:
            with pytest.raises(UnusableAnswer, match="no new_api_credentials"):
                await client.project_keys.patch(KEY_ID, adding)


async def test_a_create_refused_with_the_password_in_its_detail_does_not_print_it() -> None:
    api = ProjectKeysApi(create=echo_body(422))
    with hostile_server(api) as server:
        async with client_of(server.url) as client:
            with pytest.raises(ApiError) as caught:
                await client.project_keys.create(kafka_key())
    message = str(caught.value)
    assert caught.value.status == 422
    assert PASSWORD in str(caught.value.detail)  # the server did echo it ...
    assert PASSWORD not in message
    assert "[redacted]" in message


async def test_a_listing_of_the_wrong_shape_is_unusable_naming_the_field() -> None:
    bad = [{"id": KEY_ID, "name": "x", "status": 7}]
    with hostile_server(lambda request: json_answer(200, bad)) as server:
        async with client_of(server.url) as client:
            with pytest.raises(UnusableAnswer) as caught:
                await client.project_keys.list()
    assert "GET /project-keys" in str(caught.value)
    assert "field 'status' is a int, expected a string" in str(caught.value)
