"""The simulator as Streamkap documents its API (issue 12): computed service ids, roles xor
permissions, the documented listing, the real role catalogue, PATCH, permissions, and the hostile
answers (faults) the client must survive. In-process (ASGI) for detail, a real socket for the
end-to-end shape of each behaviour."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any, get_args

import httpx
import pytest

from provisioner.simulator import (
    ADMIN_CLIENT_ID,
    ADMIN_SECRET,
    ALL_PERMISSIONS,
    DEFAULT_ROLES,
    DELETE_CREDENTIALS,
    EXTRA_ROLE_ID,
    READ_CREDENTIALS,
    READ_ROLES,
    SERVICE_ID,
    WRITE_CREDENTIALS,
    BadCreateAnswer,
    FaultConfig,
    ManualClock,
    SimulatorState,
    create_app,
    mask_secret,
    serve_in_thread,
)
from tests.support.factories import asgi_client

pytestmark = pytest.mark.anyio

CREDS = "/auth/client-credentials"
ADMIN_LOGIN = {"client_id": ADMIN_CLIENT_ID, "secret": ADMIN_SECRET}
LISTED_FIELDS = {
    "created_by_user",
    "client_id",
    "description",
    "created_at",
    "roles",
    "service_id",
    "secret",
}
MASKED = re.compile(r"^.{3}\*{6}.{3}$")
MARKED = "Payments ingestion [provisioner:payments-api/ingest]"


@pytest.fixture
def state(clock: ManualClock) -> SimulatorState:
    return SimulatorState(now=clock)


@pytest.fixture
async def client(state: SimulatorState) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(create_app(state), "http://sim") as client:
        yield client


@pytest.fixture
def served(state: SimulatorState) -> Iterator[httpx.Client]:
    """A synchronous client of the simulator served on a real socket, logged in as the admin."""
    with serve_in_thread(create_app(state)) as url, httpx.Client(base_url=url) as http:
        token = http.post("/auth/access-token", json=ADMIN_LOGIN).json()["accessToken"]
        http.headers.update(bearer(token))
        yield http


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def create(client: httpx.AsyncClient, auth: dict[str, str], **body: Any) -> dict[str, Any]:
    body.setdefault("role_ids", ["role-read-only"])
    response = await client.post(CREDS, json=body, headers=auth)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def listing(client: httpx.AsyncClient, auth: dict[str, str]) -> list[dict[str, Any]]:
    response = await client.get(CREDS, headers=auth)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()
    return items


# 1. service_id is computed -------------------------------------------------------------------


async def test_a_create_without_service_id_gets_the_callers_service(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    created = await create(client, auth)
    named = await create(client, auth, service_id="svc-1")
    nulled = await create(client, auth, service_id=None)
    assert (created["service_id"], named["service_id"], nulled["service_id"]) == (
        SERVICE_ID,
        "svc-1",
        SERVICE_ID,
    )
    assert [item["service_id"] for item in await listing(client, auth)] == [
        SERVICE_ID,
        "svc-1",
        SERVICE_ID,
    ]


async def test_the_filled_in_service_is_configurable_and_can_be_switched_off(
    client: httpx.AsyncClient, auth: dict[str, str], state: SimulatorState
) -> None:
    state.service_id = "svc-project-7"
    assert (await create(client, auth))["service_id"] == "svc-project-7"
    state.fill_service_id = False
    assert (await create(client, auth))["service_id"] is None


# 2. role_ids xor permission_ids --------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"role_ids": ["role-admin"], "permission_ids": ["p-1"]}, "mutually exclusive"),
        ({"description": "nothing"}, "one of role_ids or permission_ids is required"),
        ({"role_ids": None, "permission_ids": None}, "is required"),
    ],
)
async def test_roles_and_permissions_are_mutually_exclusive_and_one_is_required(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    state: SimulatorState,
    body: dict[str, Any],
    problem: str,
) -> None:
    response = await client.post(CREDS, json=body, headers=auth)
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert (error["loc"], error["type"]) == (["body"], "value_error")
    assert problem in error["msg"]
    assert state.live() == []


async def test_permissions_alone_are_accepted(
    client: httpx.AsyncClient, auth: dict[str, str], state: SimulatorState
) -> None:
    created = await create(client, auth, role_ids=None, permission_ids=["p-1"])
    assert created["roles"] == []
    assert state.get(created["client_id"]) is not None
    assert state.get(created["client_id"]).permission_ids == ("p-1",)  # type: ignore[union-attr]


async def test_the_exclusivity_check_can_be_switched_off(
    client: httpx.AsyncClient, auth: dict[str, str], state: SimulatorState
) -> None:
    state.roles_xor_permissions = False
    both = {"role_ids": ["role-admin"], "permission_ids": ["p-1"]}
    assert (await client.post(CREDS, json=both, headers=auth)).status_code == 201
    assert (await client.post(CREDS, json={}, headers=auth)).status_code == 201


async def test_an_empty_list_is_still_refused_by_the_schema(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    response = await client.post(CREDS, json={"role_ids": []}, headers=auth)
    assert response.status_code == 422
    assert [e["type"] for e in response.json()["detail"]] == ["too_short"]


# 3. the listing carries exactly the documented fields -------------------------------------


async def test_the_listing_has_exactly_the_documented_fields(
    client: httpx.AsyncClient, auth: dict[str, str], state: SimulatorState
) -> None:
    created = await create(client, auth, description=MARKED, role_ids=["role-admin"])
    assert set(created) == LISTED_FIELDS  # the create answer is a ClientCredential too
    [item] = await listing(client, auth)
    assert set(item) == LISTED_FIELDS
    assert "permission_ids" not in item
    real = state.secret_of(item["client_id"])
    assert MASKED.match(item["secret"])
    assert item["secret"] == f"{real[:3]}******{real[-3:]}"
    assert created["secret"] == real
    assert [role["name"] for role in item["roles"]] == ["Admin"]
    assert set(item["roles"][0]) >= {"id", "key", "name", "description"}
    assert item == {**created, "secret": item["secret"]}


async def test_created_by_user_alternates_between_a_user_and_null(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    for _ in range(3):
        await create(client, auth)
    users = [item["created_by_user"] for item in await listing(client, auth)]
    assert users[1] is None
    assert users[0] == users[2]
    assert users[0] is not None
    assert {"id", "email", "name", "tenant_id"} <= set(users[0])


@pytest.mark.parametrize(("mode", "expect_user"), [("user", True), ("null", False)])
async def test_created_by_user_can_be_always_or_never_set(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    state: SimulatorState,
    mode: Any,
    expect_user: bool,
) -> None:
    state.created_by_user = mode
    for _ in range(2):
        await create(client, auth)
    users = [item["created_by_user"] for item in await listing(client, auth)]
    assert [user is not None for user in users] == [expect_user, expect_user]


def test_mask_secret_keeps_three_characters_each_side() -> None:
    assert mask_secret("abcdefghijklmnxyz") == "abc******xyz"
    assert mask_secret("short") == "******"


async def test_delete_answers_200_with_an_empty_body_then_404(
    client: httpx.AsyncClient, auth: dict[str, str], state: SimulatorState
) -> None:
    created = await create(client, auth)
    path = f"{CREDS}/{created['client_id']}"
    first = await client.delete(path, headers=auth)
    assert (first.status_code, first.content) == (200, b"")
    again = await client.delete(path, headers=auth)
    assert again.status_code == 404
    assert isinstance(again.json()["detail"], str)
    assert state.live() == []


# 4. the real role catalogue ----------------------------------------------------------------


async def test_the_roles_are_named_as_the_product_names_them(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    roles = (await client.get("/auth/roles", headers=auth)).json()
    assert [(r["id"], r["key"], r["name"]) for r in roles] == [
        ("role-admin", "Admin", "Admin"),
        ("role-data-admin", "DataAdmin", "Data Admin"),
        ("role-read-only", "ReadOnly", "Read Only"),
    ]
    assert [role.id for role in DEFAULT_ROLES] == [r["id"] for r in roles]


# 5. PATCH ----------------------------------------------------------------------------------


async def test_patch_changes_description_and_roles_in_place(
    client: httpx.AsyncClient, auth: dict[str, str], state: SimulatorState
) -> None:
    created = await create(client, auth, description="old", service_id="svc-1")
    path = f"{CREDS}/{created['client_id']}"
    body = {"description": MARKED, "role_ids": ["role-admin", "role-data-admin"]}
    response = await client.patch(path, json=body, headers=auth)
    assert response.status_code == 200
    patched = response.json()
    assert set(patched) == LISTED_FIELDS
    assert patched["client_id"] == created["client_id"]
    assert patched["description"] == MARKED
    assert [r["key"] for r in patched["roles"]] == ["Admin", "DataAdmin"]
    assert patched["service_id"] == "svc-1"
    assert MASKED.match(patched["secret"])
    assert state.secret_of(created["client_id"]) == created["secret"]  # the secret is kept
    login = {"client_id": created["client_id"], "secret": created["secret"]}
    assert (await client.post("/auth/access-token", json=login)).status_code == 200
    assert (await listing(client, auth))[0] == patched


async def test_patch_leaves_what_it_is_not_given(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    created = await create(client, auth, description="keep me")
    path = f"{CREDS}/{created['client_id']}"
    same = (await client.patch(path, json={}, headers=auth)).json()
    assert (same["description"], same["roles"]) == ("keep me", created["roles"])
    roles_only = (await client.patch(path, json={"role_ids": ["role-admin"]}, headers=auth)).json()
    assert roles_only["description"] == "keep me"
    cleared = (await client.patch(path, json={"description": None}, headers=auth)).json()
    assert (cleared["description"], [r["id"] for r in cleared["roles"]]) == (None, ["role-admin"])


@pytest.mark.parametrize(
    ("body", "loc", "error_type"),
    [
        ({"service_id": "svc-2"}, ["body", "service_id"], "extra_forbidden"),
        ({"service_id": None}, ["body", "service_id"], "extra_forbidden"),
        ({"role_ids": []}, ["body", "role_ids"], "too_short"),
        ({"role_ids": ["role-nope"]}, ["body", "role_ids", 0], "value_error"),
        ({"description": 5}, ["body", "description"], "string_type"),
    ],
)
async def test_patch_refuses_what_it_cannot_change(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    state: SimulatorState,
    body: dict[str, Any],
    loc: list[Any],
    error_type: str,
) -> None:
    created = await create(client, auth, description="d")
    response = await client.patch(f"{CREDS}/{created['client_id']}", json=body, headers=auth)
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert (error["loc"], error["type"]) == (loc, error_type)
    record = state.get(created["client_id"])
    assert record is not None
    assert (record.description, record.service_id) == ("d", SERVICE_ID)


async def test_patch_of_an_unknown_credential_is_404(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    response = await client.patch(f"{CREDS}/cc_gone", json={"description": "x"}, headers=auth)
    assert response.status_code == 404
    assert isinstance(response.json()["detail"], str)


async def test_without_patch_support_the_api_answers_405(
    client: httpx.AsyncClient, auth: dict[str, str], state: SimulatorState
) -> None:
    created = await create(client, auth, description="d")
    state.patch_supported = False
    path = f"{CREDS}/{created['client_id']}"
    response = await client.patch(path, json={"description": "new"}, headers=auth)
    assert (response.status_code, response.json()) == (405, {"detail": "Method Not Allowed"})
    assert response.headers["Allow"] == "DELETE"
    assert state.get(created["client_id"]).description == "d"  # type: ignore[union-attr]
    assert state.calls("PATCH")[-1].status == 405


# 6. permissions ----------------------------------------------------------------------------

CALLS = [
    ("GET", "/auth/roles", READ_ROLES),
    ("GET", CREDS, READ_CREDENTIALS),
    ("POST", CREDS, WRITE_CREDENTIALS),
    ("PATCH", f"{CREDS}/{{client_id}}", WRITE_CREDENTIALS),
    ("DELETE", f"{CREDS}/{{client_id}}", DELETE_CREDENTIALS),
]


@pytest.mark.parametrize(("method", "path", "permission"), CALLS)
async def test_each_call_needs_its_permission(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    state: SimulatorState,
    method: str,
    path: str,
    permission: str,
) -> None:
    record = state.add_credential(description="d", role_ids=["role-admin"])
    url = path.format(client_id=record.client_id)
    body = {"role_ids": ["role-admin"]} if method in ("POST", "PATCH") else None
    state.admin_permissions = ALL_PERMISSIONS - {permission}
    refused = await client.request(method, url, json=body, headers=auth)
    assert (refused.status_code, set(refused.json())) == (403, {"detail"})
    assert isinstance(refused.json()["detail"], str)
    assert [c.client_id for c in state.live()] == [record.client_id]  # nothing changed
    state.admin_permissions = frozenset({permission})
    allowed = await client.request(method, url, json=body, headers=auth)
    assert allowed.status_code in (200, 201)


async def test_an_unknown_token_is_401_before_any_permission_check(
    client: httpx.AsyncClient, state: SimulatorState
) -> None:
    state.admin_permissions = frozenset()
    response = await client.get("/auth/roles", headers=bearer("nope"))
    assert response.status_code == 401


async def test_the_admin_login_can_be_given_fewer_permissions_from_the_start(
    clock: ManualClock,
) -> None:
    state = SimulatorState(now=clock, admin_permissions={READ_ROLES, READ_CREDENTIALS})
    async with asgi_client(create_app(state), "http://sim") as client:
        token = (await client.post("/auth/access-token", json=ADMIN_LOGIN)).json()
        headers = bearer(token["accessToken"])
        assert (await client.get("/auth/roles", headers=headers)).status_code == 200
        create_answer = await client.post(CREDS, json={"role_ids": ["role-admin"]}, headers=headers)
        assert create_answer.status_code == 403
    assert state.live() == []


async def test_a_credential_may_do_what_its_roles_allow(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    reader = await create(client, auth, role_ids=["role-read-only"])
    login = {"client_id": reader["client_id"], "secret": reader["secret"]}
    token = (await client.post("/auth/access-token", json=login)).json()["accessToken"]
    assert (await client.get("/auth/roles", headers=bearer(token))).status_code == 200
    assert (await client.get(CREDS, headers=bearer(token))).status_code == 403
    body = {"role_ids": ["role-admin"]}
    assert (await client.post(CREDS, json=body, headers=bearer(token))).status_code == 403


# 7. hostile answers ------------------------------------------------------------------------


def _secret_defect(answer: dict[str, Any], bad: str) -> bool:
    secret = answer.get("secret", "<missing>")
    defects: dict[str, bool] = {
        "secret_missing": "secret" not in answer,
        "secret_null": secret is None,
        "secret_empty": secret == "",
        "secret_not_string": not isinstance(secret, str) and secret is not None,
        "secret_masked": isinstance(secret, str) and bool(MASKED.match(secret)),
    }
    return defects[bad]


@pytest.mark.parametrize("bad", [b for b in get_args(BadCreateAnswer) if b.startswith("secret_")])
async def test_bad_secret_answers_still_create_the_credential(
    client: httpx.AsyncClient, auth: dict[str, str], state: SimulatorState, bad: Any
) -> None:
    state.update_faults(bad_create_answer=bad)
    response = await client.post(CREDS, json={"role_ids": ["role-admin"]}, headers=auth)
    assert response.status_code == 201
    answer = response.json()
    assert _secret_defect(answer, bad)
    [record] = state.live()
    assert answer["client_id"] == record.client_id  # the client can find it and clean it up


async def test_a_truncated_create_answer_still_creates_the_credential(
    client: httpx.AsyncClient, auth: dict[str, str], state: SimulatorState
) -> None:
    state.update_faults(bad_create_answer="truncated_json")
    response = await client.post(CREDS, json={"role_ids": ["role-admin"]}, headers=auth)
    assert response.status_code == 201
    assert response.headers["content-type"] == "application/json"
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.content)
    assert len(state.live()) == 1


async def test_a_create_answer_without_client_id(
    client: httpx.AsyncClient, auth: dict[str, str], state: SimulatorState
) -> None:
    state.update_faults(bad_create_answer="client_id_missing")
    answer = (await client.post(CREDS, json={"role_ids": ["role-admin"]}, headers=auth)).json()
    assert "client_id" not in answer
    [record] = state.live()
    assert answer["secret"] == record.secret


async def test_a_cut_description_loses_the_marker_and_is_stored_cut(
    client: httpx.AsyncClient, auth: dict[str, str], state: SimulatorState
) -> None:
    state.update_faults(bad_create_answer="description_cut")
    answer = await create(client, auth, description=MARKED)
    assert MARKED.startswith(answer["description"])
    assert not answer["description"].endswith("]")
    assert [item["description"] for item in await listing(client, auth)] == [answer["description"]]


async def test_an_extra_default_role_is_added_and_kept(
    client: httpx.AsyncClient, auth: dict[str, str], state: SimulatorState
) -> None:
    state.update_faults(bad_create_answer="extra_role")
    answer = await create(client, auth, role_ids=["role-admin"])
    assert [r["id"] for r in answer["roles"]] == ["role-admin", EXTRA_ROLE_ID]
    [item] = await listing(client, auth)
    assert [r["id"] for r in item["roles"]] == ["role-admin", EXTRA_ROLE_ID]


async def test_the_extra_role_is_another_one_when_the_default_is_asked_for(
    client: httpx.AsyncClient, auth: dict[str, str], state: SimulatorState
) -> None:
    state.update_faults(bad_create_answer="extra_role")
    answer = await create(client, auth, role_ids=[EXTRA_ROLE_ID])
    assert [r["id"] for r in answer["roles"]] == [EXTRA_ROLE_ID, "role-admin"]


async def test_bad_create_answers_can_be_counted(
    client: httpx.AsyncClient, auth: dict[str, str], state: SimulatorState
) -> None:
    state.update_faults(bad_create_answer="secret_null", bad_create_answer_count=2)
    answers = [await create(client, auth) for _ in range(3)]
    assert [a["secret"] is None for a in answers] == [True, True, False]
    assert len(state.live()) == 3


async def test_bad_create_answers_follow_their_rate(
    client: httpx.AsyncClient, auth: dict[str, str], state: SimulatorState
) -> None:
    state.update_faults(bad_create_answer="secret_empty", bad_create_answer_rate=0.5, seed=3)
    secrets = [(await create(client, auth))["secret"] for _ in range(30)]
    assert 0 < secrets.count("") < 30


async def test_a_listing_may_repeat_every_client_id(
    client: httpx.AsyncClient, auth: dict[str, str], state: SimulatorState
) -> None:
    created = [await create(client, auth) for _ in range(2)]
    state.update_faults(bad_list_answer="duplicate_entries")
    ids = [item["client_id"] for item in await listing(client, auth)]
    first, second = (c["client_id"] for c in created)
    assert ids == [first, first, second, second]


@pytest.mark.parametrize("bad", ["not_a_list", "missing_fields", "truncated_json"])
async def test_malformed_listings(
    client: httpx.AsyncClient, auth: dict[str, str], state: SimulatorState, bad: Any
) -> None:
    await create(client, auth)
    state.update_faults(bad_list_answer=bad)
    response = await client.get(CREDS, headers=auth)
    assert response.status_code == 200
    assert _malformed(response.content, bad, "client_id")


@pytest.mark.parametrize("bad", ["not_a_list", "missing_fields", "truncated_json"])
async def test_malformed_roles(
    client: httpx.AsyncClient, auth: dict[str, str], state: SimulatorState, bad: Any
) -> None:
    state.update_faults(bad_roles_answer=bad)
    response = await client.get("/auth/roles", headers=auth)
    assert response.status_code == 200
    assert _malformed(response.content, bad, "id")


def _malformed(content: bytes, bad: str, key: str) -> bool:
    """Whether a 200 body has the defect `bad` names (`key` is the field that goes missing)."""
    try:
        body = json.loads(content)
    except json.JSONDecodeError:
        return bad == "truncated_json"
    if bad == "not_a_list":
        return isinstance(body, dict)
    return bad == "missing_fields" and bool(body) and all(key not in item for item in body)


@pytest.mark.parametrize(
    ("bad", "expires_in"),
    [("expires_in_missing", None), ("expires_in_zero", 0), ("expires_in_negative", -1)],
)
async def test_token_answers_with_a_bad_lifetime_still_give_a_working_token(
    client: httpx.AsyncClient, state: SimulatorState, bad: Any, expires_in: int | None
) -> None:
    state.update_faults(bad_token_answer=bad)
    answer = (await client.post("/auth/access-token", json=ADMIN_LOGIN)).json()
    assert answer.get("expiresIn") == expires_in
    assert (await client.get("/auth/roles", headers=bearer(answer["accessToken"]))).is_success
    refreshed = await client.post(
        "/auth/access-token/refresh", json={"refresh_token": answer["refreshToken"]}
    )
    assert refreshed.json().get("expiresIn") == expires_in


@pytest.mark.parametrize("bad", ["not_an_object", "access_token_missing", "truncated_json"])
async def test_malformed_token_answers(
    client: httpx.AsyncClient, state: SimulatorState, bad: Any
) -> None:
    state.update_faults(bad_token_answer=bad)
    response = await client.post("/auth/access-token", json=ADMIN_LOGIN)
    assert response.status_code == 200
    try:
        body = json.loads(response.content)
    except json.JSONDecodeError:
        assert bad == "truncated_json"
        return
    assert not isinstance(body, dict) or "accessToken" not in body


def test_fault_options_are_validated() -> None:
    with pytest.raises(ValueError, match="bad_create_answer"):
        FaultConfig.model_validate({"bad_create_answer": "nonsense"})
    with pytest.raises(ValueError, match="bad_create_answer_count"):
        FaultConfig(bad_create_answer_count=-1)


# Over a real socket ------------------------------------------------------------------------


def test_the_documented_lifecycle_over_a_socket(served: httpx.Client) -> None:
    created = served.post(CREDS, json={"description": MARKED, "role_ids": ["role-read-only"]})
    assert created.status_code == 201
    client_id, secret = created.json()["client_id"], created.json()["secret"]
    assert created.json()["service_id"] == SERVICE_ID
    [item] = served.get(CREDS).json()
    assert set(item) == LISTED_FIELDS
    assert item["secret"] == f"{secret[:3]}******{secret[-3:]}"
    patched = served.patch(f"{CREDS}/{client_id}", json={"role_ids": ["role-data-admin"]})
    assert (patched.status_code, patched.json()["roles"][0]["name"]) == (200, "Data Admin")
    login = {"client_id": client_id, "secret": secret}
    assert served.post("/auth/access-token", json=login).status_code == 200
    deleted = served.delete(f"{CREDS}/{client_id}")
    assert (deleted.status_code, deleted.content) == (200, b"")
    assert served.delete(f"{CREDS}/{client_id}").status_code == 404


def test_refusals_over_a_socket(served: httpx.Client, state: SimulatorState) -> None:
    both = served.post(CREDS, json={"role_ids": ["role-admin"], "permission_ids": ["p"]})
    assert both.status_code == 422
    state.patch_supported = False
    assert served.patch(f"{CREDS}/cc_x", json={}).status_code == 405
    state.admin_permissions = frozenset()
    forbidden = served.post(CREDS, json={"role_ids": ["role-admin"]})
    assert forbidden.status_code == 403
    assert isinstance(forbidden.json()["detail"], str)
    assert state.live() == []


def test_a_truncated_create_answer_over_a_socket(
    served: httpx.Client, state: SimulatorState
) -> None:
    state.update_faults(bad_create_answer="truncated_json", bad_create_answer_count=1)
    cut = served.post(CREDS, json={"role_ids": ["role-admin"]})
    assert cut.status_code == 201
    with pytest.raises(json.JSONDecodeError):
        cut.json()
    whole = served.post(CREDS, json={"role_ids": ["role-admin"]})
    assert whole.json()["secret"] == state.secret_of(whole.json()["client_id"])
    assert len(state.live()) == 2


def test_a_duplicating_listing_over_a_socket(served: httpx.Client, state: SimulatorState) -> None:
    record = state.add_credential(role_ids=["role-admin"])
    state.update_faults(bad_list_answer="duplicate_entries")
    ids = [item["client_id"] for item in served.get(CREDS).json()]
    assert ids == [record.client_id, record.client_id]
