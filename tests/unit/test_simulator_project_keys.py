"""The simulator's `/project-keys` routes over plain HTTP (in-process), on a manual clock: the
documented shapes, validation, PATCH rules, asynchronous statuses, faults, and saved state."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from provisioner.simulator import (
    READ_PROJECT_KEYS,
    FaultConfig,
    ManualClock,
    SimulatorState,
    VaultState,
    create_app,
    load_saved,
    save_state,
)
from tests.support.factories import asgi_client

pytestmark = pytest.mark.anyio

KEYS = "/project-keys"
PASSWORD = "a-kafka-password-long-enough"
SUMMARY_FIELDS = {
    "id",
    "name",
    "service_id",
    "status",
    "description",
    "created_at",
    "created_by_user",
    "api_client_id",
    "api_client_id_masked_secret",
    "kafka_username",
    "roles",
    "last_used_at",
    "tool_profile",
    "allowed_tools",
    "blocked_tools",
}
DETAIL_FIELDS = SUMMARY_FIELDS | {
    "kafka_acls",
    "whitelist_ips",
    "kafka_proxy_endpoint",
    "schema_proxy_endpoint",
    "token_ttl_seconds",
}
READ_ACL = {"topic_name": "orders.", "operation": "READ", "resource_pattern_type": "PREFIXED"}


def kafka_config(username: str = "orders-reader", **changes: Any) -> dict[str, Any]:
    return {"username": username, "password": PASSWORD, "kafka_acls": [READ_ACL], **changes}


@pytest.fixture
def state(clock: ManualClock) -> SimulatorState:
    state = SimulatorState(now=clock)
    state.project_keys.activation_delay = 10
    state.project_keys.deletion_delay = 10
    return state


@pytest.fixture
async def http(state: SimulatorState, auth: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(create_app(state), "http://sim", headers=auth) as client:
        yield client


async def create(http: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    body.setdefault("name", "key")
    response = await http.post(KEYS, json=body)
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def detail(http: httpx.AsyncClient, key_id: str) -> dict[str, Any]:
    response = await http.get(f"{KEYS}/{key_id}")
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def test_a_create_answers_the_one_time_file(http: httpx.AsyncClient) -> None:
    made = await create(http, role_ids=["role-read-only"], kafka_config=kafka_config())
    assert made["type"] == "streamkap_project_key"
    assert set(made["api"]) == {"client_id", "client_secret", "token_endpoint", "api_url", "roles"}
    assert made["api"]["token_endpoint"] == "http://sim/auth/access-token"
    assert made["kafka"]["password"] == PASSWORD  # the caller's, shown back once
    assert made["kafka"]["security_protocol"] == "SASL_SSL"
    assert made["kafka"]["sasl_mechanism"] == "PLAIN"
    assert made["kafka"]["schema_registry_url"] is None  # not asked for
    assert made["kafka_acls"] == [{**READ_ACL, "resource": "TOPIC"}]


async def test_the_listing_and_the_detail_carry_exactly_the_documented_fields_and_no_secret(
    http: httpx.AsyncClient,
) -> None:
    made = await create(http, role_ids=["role-read-only"], kafka_config=kafka_config())
    [listed] = (await http.get(KEYS)).json()
    one = await detail(http, made["project_key_id"])
    assert set(listed) == SUMMARY_FIELDS
    assert set(one) == DETAIL_FIELDS
    text = str(listed) + str(one)
    assert made["api"]["client_secret"] not in text
    assert PASSWORD not in text
    assert "******" in listed["api_client_id_masked_secret"]


async def test_a_key_with_kafka_access_is_creating_until_the_delay_has_passed(
    http: httpx.AsyncClient, clock: ManualClock
) -> None:
    made = await create(http, kafka_config=kafka_config())
    assert (await detail(http, made["project_key_id"]))["status"] == "creating"
    clock.advance(9)
    assert (await detail(http, made["project_key_id"]))["status"] == "creating"
    clock.advance(1)
    assert (await detail(http, made["project_key_id"]))["status"] == "active"


async def test_a_key_without_kafka_access_is_active_at_once(http: httpx.AsyncClient) -> None:
    made = await create(http, role_ids=["role-read-only"])
    assert (await detail(http, made["project_key_id"]))["status"] == "active"


async def test_the_slow_activation_fault_sets_the_delay(
    http: httpx.AsyncClient, clock: ManualClock, state: SimulatorState
) -> None:
    state.faults = FaultConfig(slow_activation=100)
    made = await create(http, kafka_config=kafka_config())
    clock.advance(99)
    assert (await detail(http, made["project_key_id"]))["status"] == "creating"
    clock.advance(1)
    assert (await detail(http, made["project_key_id"]))["status"] == "active"


async def test_the_keys_api_credential_logs_in_with_its_roles_and_moves_last_used_at(
    http: httpx.AsyncClient, clock: ManualClock
) -> None:
    made = await create(http, role_ids=["role-read-only"])
    clock.advance(60)
    login = {"client_id": made["api"]["client_id"], "secret": made["api"]["client_secret"]}
    token = (await http.post("/auth/access-token", json=login)).json()["accessToken"]
    as_key = {"Authorization": f"Bearer {token}"}
    assert (await http.get("/auth/roles", headers=as_key)).status_code == 200  # Read Only may
    assert (await http.get(KEYS, headers=as_key)).status_code == 403  # ... but not this
    assert (await detail(http, made["project_key_id"]))["last_used_at"] == clock().isoformat()


async def test_a_kafka_client_using_the_key_moves_last_used_at(
    http: httpx.AsyncClient, clock: ManualClock, state: SimulatorState
) -> None:
    made = await create(http, kafka_config=kafka_config())
    clock.advance(30)
    state.project_keys.use(made["project_key_id"])
    assert (await detail(http, made["project_key_id"]))["last_used_at"] == clock().isoformat()


async def test_a_wrong_secret_does_not_log_in_nor_move_last_used_at(
    http: httpx.AsyncClient,
) -> None:
    made = await create(http, role_ids=["role-read-only"])
    login = {"client_id": made["api"]["client_id"], "secret": "not-the-secret"}
    assert (await http.post("/auth/access-token", json=login)).status_code == 401
    assert (await detail(http, made["project_key_id"]))["last_used_at"] is None


@pytest.mark.parametrize(
    "username", ["", "Orders", "-orders", "orders-", "orders_reader", "a" * 25, "ørders"]
)
async def test_bad_kafka_usernames_are_422(http: httpx.AsyncClient, username: str) -> None:
    response = await http.post(KEYS, json={"name": "k", "kafka_config": kafka_config(username)})
    assert response.status_code == 422


@pytest.mark.parametrize("username", ["a", "0", "orders-reader-g1", "a" * 24, "a-b"])
async def test_good_kafka_usernames_are_taken(http: httpx.AsyncClient, username: str) -> None:
    await create(http, kafka_config=kafka_config(username))


@pytest.mark.parametrize("password", ["x" * 11, "x" * 129])
async def test_passwords_outside_12_to_128_characters_are_422(
    http: httpx.AsyncClient, password: str
) -> None:
    body = {"name": "k", "kafka_config": kafka_config(password=password)}
    assert (await http.post(KEYS, json=body)).status_code == 422


async def test_a_taken_kafka_username_is_409_until_its_key_is_gone(
    http: httpx.AsyncClient, clock: ManualClock
) -> None:
    made = await create(http, kafka_config=kafka_config())
    body = {"name": "other", "kafka_config": kafka_config()}
    assert (await http.post(KEYS, json=body)).status_code == 409
    await http.delete(f"{KEYS}/{made['project_key_id']}")
    assert (await http.post(KEYS, json=body)).status_code == 409  # still deleting
    clock.advance(10)
    assert (await http.post(KEYS, json=body)).status_code == 201


@pytest.mark.parametrize(
    "body",
    [
        {"name": "k"},  # no capability
        {"name": "", "role_ids": ["role-read-only"]},
        {"name": "k" * 101, "role_ids": ["role-read-only"]},
        {"name": "k", "role_ids": ["role-read-only"], "permission_ids": ["p"]},
        {"name": "k", "role_ids": ["role-nope"]},
        {"name": "k", "role_ids": ["role-read-only"], "tool_profile": "everything"},
        {"name": "k", "kafka_config": kafka_config(whitelist_ips="10.0.0.0/8, not-an-ip")},
        {
            "name": "k",
            "kafka_config": kafka_config(
                kafka_acls=[{**READ_ACL, "operation": "WRITE", "resource": "GROUP"}]
            ),
        },
        {"name": "k", "kafka_config": kafka_config(kafka_acls=[{**READ_ACL, "operation": "X"}])},
    ],
)
async def test_invalid_creates_are_422(http: httpx.AsyncClient, body: dict[str, Any]) -> None:
    response = await http.post(KEYS, json=body)
    assert response.status_code == 422, response.text


async def test_a_patch_changes_every_documented_field(
    http: httpx.AsyncClient, clock: ManualClock
) -> None:
    made = await create(http, role_ids=["role-read-only"], kafka_config=kafka_config())
    clock.advance(10)
    change = {
        "name": "renamed",
        "description": "new",
        "role_ids": ["role-data-admin"],
        "kafka_acls": [{**READ_ACL, "operation": "DESCRIBE"}],
        "whitelist_ips": "10.1.0.0/16,192.168.1.1",
        "kafka_password": "a-new-kafka-password",
        "tool_profile": "agent-operator",
        "allowed_tools": ["a"],
        "blocked_tools": ["b"],
    }
    response = await http.patch(f"{KEYS}/{made['project_key_id']}", json=change)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert "new_api_credentials" not in answer
    assert "new_kafka_credentials" not in answer
    assert (answer["name"], answer["description"], answer["tool_profile"]) == (
        "renamed",
        "new",
        "agent-operator",
    )
    assert [role["id"] for role in answer["roles"]] == ["role-data-admin"]
    assert answer["kafka_acls"][0]["operation"] == "DESCRIBE"
    assert answer["whitelist_ips"] == "10.1.0.0/16,192.168.1.1"
    assert (answer["allowed_tools"], answer["blocked_tools"]) == (["a"], ["b"])
    assert answer["api_client_id"] == made["api"]["client_id"]


async def test_kafka_config_on_an_api_only_key_adds_kafka_access(http: httpx.AsyncClient) -> None:
    made = await create(http, role_ids=["role-read-only"])
    response = await http.patch(
        f"{KEYS}/{made['project_key_id']}", json={"kafka_config": kafka_config()}
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["new_kafka_credentials"]["password"] == PASSWORD
    assert answer["kafka_username"] == "orders-reader"
    assert answer["status"] == "creating"


async def test_role_ids_on_a_kafka_only_key_add_api_access(
    http: httpx.AsyncClient, clock: ManualClock
) -> None:
    made = await create(http, kafka_config=kafka_config())
    clock.advance(10)
    response = await http.patch(
        f"{KEYS}/{made['project_key_id']}", json={"role_ids": ["role-read-only"]}
    )
    new = response.json()["new_api_credentials"]
    login = {"client_id": new["client_id"], "secret": new["client_secret"]}
    assert (await http.post("/auth/access-token", json=login)).status_code == 200


@pytest.mark.parametrize(
    ("created", "change"),
    [
        ({"permission_ids": ["p1"]}, {"permission_ids": ["p2"]}),
        ({"role_ids": ["role-read-only"]}, {"permission_ids": ["p2"]}),
        ({"permission_ids": ["p1"]}, {"role_ids": ["role-read-only"]}),
        ({"role_ids": ["role-read-only"]}, {"kafka_acls": [READ_ACL]}),
        ({"role_ids": ["role-read-only"]}, {"kafka_password": "long-enough-password"}),
    ],
)
async def test_what_no_patch_can_do_is_400(
    http: httpx.AsyncClient, created: dict[str, Any], change: dict[str, Any]
) -> None:
    made = await create(http, **created)
    response = await http.patch(f"{KEYS}/{made['project_key_id']}", json=change)
    assert response.status_code == 400, response.text


async def test_a_patch_is_400_while_creating_deleting_or_delete_failed(
    http: httpx.AsyncClient, clock: ManualClock, state: SimulatorState
) -> None:
    made = await create(http, kafka_config=kafka_config())
    path = f"{KEYS}/{made['project_key_id']}"
    assert (await http.patch(path, json={"name": "x"})).status_code == 400  # creating
    clock.advance(10)
    state.update_faults(project_key_delete_failed_rate=1.0)
    assert (await http.delete(path)).status_code == 202
    assert (await http.patch(path, json={"name": "x"})).status_code == 400  # deleting
    clock.advance(10)
    assert (await detail(http, made["project_key_id"]))["status"] == "delete_failed"
    assert (await http.patch(path, json={"name": "x"})).status_code == 400


async def test_a_delete_is_asynchronous_and_the_key_stops_logging_in(
    http: httpx.AsyncClient, clock: ManualClock
) -> None:
    made = await create(http, role_ids=["role-read-only"])
    path = f"{KEYS}/{made['project_key_id']}"
    assert (await http.delete(path)).status_code == 202
    assert (await detail(http, made["project_key_id"]))["status"] == "deleting"
    login = {"client_id": made["api"]["client_id"], "secret": made["api"]["client_secret"]}
    assert (await http.post("/auth/access-token", json=login)).status_code == 401
    clock.advance(10)
    assert (await http.get(path)).status_code == 404
    assert (await http.delete(path)).status_code == 404
    assert (await http.get(KEYS)).json() == []


async def test_unknown_keys_are_404(http: httpx.AsyncClient) -> None:
    assert (await http.get(f"{KEYS}/pk_nope")).status_code == 404
    assert (await http.patch(f"{KEYS}/pk_nope", json={"name": "x"})).status_code == 404


async def test_calls_need_the_project_key_permissions(
    http: httpx.AsyncClient, state: SimulatorState
) -> None:
    state.admin_permissions = state.admin_permissions - {READ_PROJECT_KEYS}
    assert (await http.get(KEYS)).status_code == 403


async def test_writes_are_in_the_call_log_under_their_prefix(
    http: httpx.AsyncClient, state: SimulatorState
) -> None:
    made = await create(http, role_ids=["role-read-only"])
    await http.get(KEYS)
    await http.delete(f"{KEYS}/{made['project_key_id']}")
    assert [c.method for c in state.write_calls(KEYS)] == ["POST", "DELETE"]
    assert state.write_calls() == []  # the client-credential writes are apart


async def test_project_keys_are_saved_between_simulate_runs(
    http: httpx.AsyncClient, state: SimulatorState, clock: ManualClock, tmp_path: Path
) -> None:
    made = await create(http, role_ids=["role-read-only"], kafka_config=kafka_config())
    path = tmp_path / "state.json"
    save_state(path, state, VaultState())
    resumed = SimulatorState(now=clock)
    assert load_saved(path, resumed, VaultState())
    [key] = resumed.project_keys.live()
    assert key == state.project_keys.get(made["project_key_id"])
    assert resumed.login(made["api"]["client_id"], made["api"]["client_secret"]) is not None


def test_a_state_file_from_before_project_keys_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text('{"format": 1, "credentials": [], "vault": []}')
    state = SimulatorState()
    assert load_saved(path, state, VaultState())
    assert state.project_keys.live() == []
