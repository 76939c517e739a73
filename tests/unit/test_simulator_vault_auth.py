"""The Vault stub's logins (issue 15, point 12): kubernetes and approle, tokens with a lease
that expires on the state's clock, lookup-self and renew-self; in-process for Vault's exact
answers, and hvac's own login calls against the stub on a real socket."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import hvac
import hvac.exceptions
import pytest

from provisioner.simulator import (
    VAULT_ROOT_TOKEN,
    FaultConfig,
    Grant,
    ManualClock,
    VaultState,
    create_vault_app,
    serve_in_thread,
)
from tests.support.factories import asgi_client

pytestmark = pytest.mark.anyio

JWT = "eyJhbGciOiJSUzI1NiJ9.service-account.signature"
ROLE_ID = "6a1b2c3d-role"
SECRET_ID = "9f8e7d6c-secret"
DATA = "/v1/secret/data/streamkap/payments-api/ingest"
K8S_LOGIN = "/v1/auth/kubernetes/login"
APPROLE_LOGIN = "/v1/auth/approle/login"
LIMITED = Grant(
    policy={"secret/data/streamkap/*": ["create", "read", "update"]},
    policies=("default", "provisioner"),
    ttl=60,
)


@pytest.fixture
def state(clock: ManualClock) -> VaultState:
    state = VaultState(now=clock)
    state.add_kubernetes_role("provisioner", JWT, LIMITED)
    state.add_approle(ROLE_ID, SECRET_ID, LIMITED, name="provisioner")
    return state


@pytest.fixture
async def vault(state: VaultState) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(create_vault_app(state), "http://vault") as client:
        yield client


@pytest.fixture
def url(state: VaultState) -> Iterator[str]:
    with serve_in_thread(create_vault_app(state)) as served:
        yield served


async def login(vault: httpx.AsyncClient, path: str, body: dict[str, Any]) -> httpx.Response:
    return await vault.post(path, json=body)


async def token_of(vault: httpx.AsyncClient) -> str:
    answer = await login(vault, K8S_LOGIN, {"role": "provisioner", "jwt": JWT})
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["auth"]["client_token"]
    return token


# The logins ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "metadata"),
    [
        (K8S_LOGIN, {"role": "provisioner", "jwt": JWT}, {"role": "provisioner"}),
        (APPROLE_LOGIN, {"role_id": ROLE_ID, "secret_id": SECRET_ID}, {"role_name": "provisioner"}),
    ],
)
async def test_a_login_answers_like_vault(
    vault: httpx.AsyncClient, path: str, body: dict[str, str], metadata: dict[str, str]
) -> None:
    response = await login(vault, path, body)
    assert response.status_code == 200
    answer = response.json()
    assert answer["data"] is None
    auth = answer["auth"]
    assert auth["client_token"].startswith("hvs.")
    assert (auth["lease_duration"], auth["renewable"]) == (60, True)
    assert auth["policies"] == ["default", "provisioner"]
    assert auth["metadata"] == metadata
    assert {"accessor", "token_policies", "token_type", "orphan"} <= set(auth)


async def test_a_login_token_works_within_its_policy(vault: httpx.AsyncClient) -> None:
    headers = {"X-Vault-Token": await token_of(vault)}
    written = await vault.post(DATA, json={"data": {"client_id": "cc_1"}}, headers=headers)
    assert written.status_code == 200
    read = await vault.get(DATA, headers=headers)
    assert read.json()["data"]["data"] == {"client_id": "cc_1"}
    outside = await vault.get("/v1/secret/data/other", headers=headers)
    assert (outside.status_code, outside.json()) == (403, {"errors": ["permission denied"]})


async def test_a_default_grant_may_do_anything(state: VaultState, vault: httpx.AsyncClient) -> None:
    state.add_kubernetes_role("ops", "ops-jwt")
    answer = await login(vault, K8S_LOGIN, {"role": "ops", "jwt": "ops-jwt"})
    headers = {"X-Vault-Token": answer.json()["auth"]["client_token"]}
    assert answer.json()["auth"]["lease_duration"] == 3600
    response = await vault.post("/v1/secret/data/other", json={"data": {}}, headers=headers)
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("path", "body", "status", "error"),
    [
        (K8S_LOGIN, {"jwt": JWT}, 400, "missing role"),
        (K8S_LOGIN, {"role": "provisioner"}, 400, "missing jwt"),
        (K8S_LOGIN, {"role": "nope", "jwt": JWT}, 400, 'invalid role name "nope"'),
        (K8S_LOGIN, {"role": "provisioner", "jwt": "forged"}, 403, "permission denied"),
        (APPROLE_LOGIN, {"secret_id": SECRET_ID}, 400, "missing role_id"),
        (APPROLE_LOGIN, {"role_id": ROLE_ID}, 400, "missing secret_id"),
        (APPROLE_LOGIN, {"role_id": "nope", "secret_id": SECRET_ID}, 400, "invalid role or"),
        (APPROLE_LOGIN, {"role_id": ROLE_ID, "secret_id": "wrong"}, 400, "invalid role or"),
    ],
)
async def test_a_refused_login_answers_like_vault(
    vault: httpx.AsyncClient, path: str, body: dict[str, str], status: int, error: str
) -> None:
    response = await login(vault, path, body)
    assert response.status_code == status
    [message] = response.json()["errors"]
    assert message.startswith(error)


async def test_a_login_body_that_is_not_json_is_400(vault: httpx.AsyncClient) -> None:
    response = await vault.post(K8S_LOGIN, content=b"{nope")
    assert response.status_code == 400
    assert "failed to parse JSON" in response.json()["errors"][0]


async def test_a_login_at_a_mount_that_is_not_enabled_is_denied(
    vault: httpx.AsyncClient,
) -> None:
    response = await login(vault, "/v1/auth/k8s-prod/login", {"role": "provisioner", "jwt": JWT})
    assert (response.status_code, response.json()) == (403, {"errors": ["permission denied"]})


async def test_roles_may_live_at_other_mounts(state: VaultState, vault: httpx.AsyncClient) -> None:
    state.add_kubernetes_role("provisioner", ["jwt-a", "jwt-b"], mount="k8s/prod")
    for jwt in ("jwt-a", "jwt-b"):
        answer = await login(vault, "/v1/auth/k8s/prod/login", {"role": "provisioner", "jwt": jwt})
        assert answer.status_code == 200
    assert state.auth_mounts["k8s/prod"] == "kubernetes"


async def test_logins_are_refused_while_vault_is_down(
    state: VaultState, vault: httpx.AsyncClient
) -> None:
    state.faults = FaultConfig(fail_all=True)
    response = await login(vault, K8S_LOGIN, {"role": "provisioner", "jwt": JWT})
    assert response.status_code == 503


async def test_logins_are_not_writes(state: VaultState, vault: httpx.AsyncClient) -> None:
    state.fail_writes = True
    response = await login(vault, K8S_LOGIN, {"role": "provisioner", "jwt": JWT})
    assert response.status_code == 200


# Leases, lookup-self and renew-self -----------------------------------------------------------


async def test_a_login_token_expires_with_its_lease(
    vault: httpx.AsyncClient, clock: ManualClock
) -> None:
    headers = {"X-Vault-Token": await token_of(vault)}
    await vault.post(DATA, json={"data": {"n": 1}}, headers=headers)
    clock.advance(59)
    assert (await vault.get(DATA, headers=headers)).status_code == 200
    clock.advance(1)
    expired = await vault.get(DATA, headers=headers)
    assert (expired.status_code, expired.json()) == (403, {"errors": ["permission denied"]})
    lookup = await vault.get("/v1/auth/token/lookup-self", headers=headers)
    assert lookup.status_code == 403
    assert (await vault.get(DATA, headers={"X-Vault-Token": VAULT_ROOT_TOKEN})).is_success


async def test_lookup_self_describes_a_live_token(
    vault: httpx.AsyncClient, clock: ManualClock
) -> None:
    token = await token_of(vault)
    clock.advance(20)
    response = await vault.get("/v1/auth/token/lookup-self", headers={"X-Vault-Token": token})
    assert response.status_code == 200
    data = response.json()["data"]
    assert (data["ttl"], data["creation_ttl"], data["renewable"]) == (40, 60, True)
    assert data["policies"] == ["default", "provisioner"]
    assert data["path"] == "auth/kubernetes/login"
    assert data["expire_time"]


@pytest.mark.parametrize("token", [VAULT_ROOT_TOKEN, "", "unknown"])
async def test_lookup_self_of_root_and_of_unknown_tokens(
    vault: httpx.AsyncClient, token: str
) -> None:
    response = await vault.get("/v1/auth/token/lookup-self", headers={"X-Vault-Token": token})
    if token != VAULT_ROOT_TOKEN:
        assert (response.status_code, response.json()) == (403, {"errors": ["permission denied"]})
        return
    data = response.json()["data"]
    assert (data["policies"], data["ttl"], data["expire_time"]) == (["root"], 0, None)


async def test_renew_self_extends_the_lease(vault: httpx.AsyncClient, clock: ManualClock) -> None:
    headers = {"X-Vault-Token": await token_of(vault)}
    clock.advance(50)
    renewed = await vault.post("/v1/auth/token/renew-self", json={}, headers=headers)
    assert renewed.json()["auth"]["lease_duration"] == 60
    clock.advance(50)
    assert (await vault.get("/v1/auth/token/lookup-self", headers=headers)).status_code == 200


async def test_a_static_token_may_be_given_a_lease(
    state: VaultState, vault: httpx.AsyncClient, clock: ManualClock
) -> None:
    state.add_token("short-lived", ttl=5)
    headers = {"X-Vault-Token": "short-lived"}
    assert (await vault.get("/v1/auth/token/lookup-self", headers=headers)).json()["data"][
        "ttl"
    ] == 5
    clock.advance(5)
    assert (await vault.get("/v1/auth/token/lookup-self", headers=headers)).status_code == 403


# hvac against the stub on a real socket ---------------------------------------------------


def test_hvac_kubernetes_login_then_kv_v2(url: str) -> None:
    client = hvac.Client(url=url)
    answer = client.auth.kubernetes.login("provisioner", JWT)
    assert client.token == answer["auth"]["client_token"]
    assert client.is_authenticated()
    kv = client.secrets.kv.v2
    kv.create_or_update_secret("streamkap/svc/cred", {"client_id": "cc_1"}, cas=0)
    read = kv.read_secret_version("streamkap/svc/cred", raise_on_deleted_version=True)
    assert read["data"]["data"] == {"client_id": "cc_1"}
    with pytest.raises(hvac.exceptions.Forbidden):
        kv.read_secret_version("elsewhere", raise_on_deleted_version=True)


def test_hvac_approle_login_then_kv_v2(url: str, state: VaultState) -> None:
    client = hvac.Client(url=url)
    client.auth.approle.login(ROLE_ID, SECRET_ID)
    client.secrets.kv.v2.create_or_update_secret("streamkap/svc/cred", {"secret": "s"})
    assert state.secret("streamkap/svc/cred") == {"secret": "s"}
    assert client.auth.token.lookup_self()["data"]["meta"] == {"role_name": "provisioner"}


def test_hvac_sees_refused_logins_as_vault_errors(url: str) -> None:
    client = hvac.Client(url=url)
    with pytest.raises(hvac.exceptions.Forbidden):
        client.auth.kubernetes.login("provisioner", "forged")
    with pytest.raises(hvac.exceptions.InvalidRequest, match="invalid role name"):
        client.auth.kubernetes.login("nope", JWT)
    with pytest.raises(hvac.exceptions.InvalidRequest, match="invalid role or secret ID"):
        client.auth.approle.login(ROLE_ID, "wrong")
    assert not client.is_authenticated()


def test_hvac_after_the_lease_ends_then_logs_in_again(url: str, clock: ManualClock) -> None:
    client = hvac.Client(url=url)
    client.auth.kubernetes.login("provisioner", JWT)
    clock.advance(60)
    assert not client.is_authenticated()
    with pytest.raises(hvac.exceptions.Forbidden):
        client.secrets.kv.v2.create_or_update_secret("streamkap/svc/cred", {"n": 1})
    client.auth.kubernetes.login("provisioner", JWT)
    client.secrets.kv.v2.create_or_update_secret("streamkap/svc/cred", {"n": 1})


def test_hvac_renews_its_token(url: str, clock: ManualClock) -> None:
    client = hvac.Client(url=url)
    client.auth.kubernetes.login("provisioner", JWT)
    clock.advance(30)
    renewed = client.auth.token.renew_self()
    assert renewed["auth"]["lease_duration"] == 60
    clock.advance(45)
    assert client.is_authenticated()
