"""The Vault stub speaks KV v2 as real Vault does: envelopes, versions, cas, tokens, faults."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from provisioner.simulator import (
    CAS_MISMATCH,
    VAULT_ROOT_TOKEN,
    Call,
    FaultConfig,
    VaultState,
    create_vault_app,
)
from tests.support.factories import asgi_client

pytestmark = pytest.mark.anyio
ROOT = {"X-Vault-Token": VAULT_ROOT_TOKEN}
DATA = "/v1/secret/data/app/db"


@pytest.fixture
def state() -> VaultState:
    return VaultState()


@pytest.fixture
async def vault(state: VaultState) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(create_vault_app(state), "http://vault") as client:
        yield client


async def put(
    vault: httpx.AsyncClient, data: dict[str, Any], cas: int | None = None, path: str = DATA
) -> httpx.Response:
    body: dict[str, Any] = {"data": data}
    if cas is not None:
        body["options"] = {"cas": cas}
    return await vault.post(path, json=body, headers=ROOT)


async def test_write_then_read_answers_with_the_data_and_metadata_envelope(
    vault: httpx.AsyncClient,
) -> None:
    written = await put(vault, {"user": "app"})
    assert written.status_code == 200
    assert written.json()["data"]["version"] == 1
    assert set(written.json()["data"]) == {
        "created_time",
        "custom_metadata",
        "deletion_time",
        "destroyed",
        "version",
    }
    read = (await vault.get(DATA, headers=ROOT)).json()
    assert read["data"]["data"] == {"user": "app"}
    assert read["data"]["metadata"]["version"] == 1
    assert read["data"]["metadata"]["deletion_time"] == ""
    assert {"request_id", "lease_id", "renewable", "lease_duration", "wrap_info"} <= set(read)


async def test_each_write_adds_a_version_and_old_versions_stay_readable(
    vault: httpx.AsyncClient,
) -> None:
    await put(vault, {"n": 1})
    await put(vault, {"n": 2})
    assert (await vault.get(DATA, headers=ROOT)).json()["data"]["data"] == {"n": 2}
    first = await vault.get(DATA, params={"version": 1}, headers=ROOT)
    assert first.json()["data"]["data"] == {"n": 1}


async def test_a_missing_secret_is_404_with_empty_errors(vault: httpx.AsyncClient) -> None:
    response = await vault.get(DATA, headers=ROOT)
    assert (response.status_code, response.json()) == (404, {"errors": []})


async def test_cas_zero_creates_only_and_a_stale_cas_is_400(vault: httpx.AsyncClient) -> None:
    assert (await put(vault, {"n": 1}, cas=0)).status_code == 200
    stale = await put(vault, {"n": 2}, cas=0)
    assert (stale.status_code, stale.json()) == (400, {"errors": [CAS_MISMATCH]})
    assert (await put(vault, {"n": 2}, cas=1)).json()["data"]["version"] == 2


async def test_cas_mismatch_status_can_be_412(state: VaultState, vault: httpx.AsyncClient) -> None:
    state.cas_mismatch_status = 412
    await put(vault, {"n": 1})
    assert (await put(vault, {"n": 2}, cas=0)).status_code == 412


async def test_soft_delete_hides_the_latest_version_but_keeps_its_metadata(
    vault: httpx.AsyncClient,
) -> None:
    await put(vault, {"n": 1})
    assert (await vault.delete(DATA, headers=ROOT)).status_code == 204
    read = await vault.get(DATA, headers=ROOT)
    assert read.status_code == 404
    assert read.json()["data"]["data"] is None
    assert read.json()["data"]["metadata"]["deletion_time"] != ""
    metadata = (await vault.get("/v1/secret/metadata/app/db", headers=ROOT)).json()["data"]
    assert metadata["current_version"] == 1
    assert metadata["versions"]["1"]["deletion_time"] != ""


async def test_destroy_removes_a_versions_data_for_good(vault: httpx.AsyncClient) -> None:
    await put(vault, {"n": 1})
    destroyed = await vault.post("/v1/secret/destroy/app/db", json={"versions": [1]}, headers=ROOT)
    assert destroyed.status_code == 204
    read = await vault.get(DATA, headers=ROOT)
    assert read.status_code == 404
    assert read.json()["data"]["metadata"]["destroyed"] is True


async def test_deleting_metadata_removes_every_version(vault: httpx.AsyncClient) -> None:
    await put(vault, {"n": 1})
    assert (await vault.delete("/v1/secret/metadata/app/db", headers=ROOT)).status_code == 204
    assert (await vault.get("/v1/secret/metadata/app/db", headers=ROOT)).status_code == 404
    assert (await put(vault, {"n": 2}, cas=0)).json()["data"]["version"] == 1


@pytest.mark.parametrize("how", ["LIST", "GET ?list=true"])
async def test_list_names_children_with_folders_suffixed(
    vault: httpx.AsyncClient, how: str
) -> None:
    for path in ("app/db", "app/cache/redis", "other"):
        await put(vault, {"n": 1}, path=f"/v1/secret/data/{path}")
    method, _, query = how.partition(" ")
    url = "/v1/secret/metadata/app" + query
    response = await vault.request(method, url, headers=ROOT)
    assert response.json()["data"] == {"keys": ["cache/", "db"]}
    nothing = await vault.request(method, "/v1/secret/metadata/none" + query, headers=ROOT)
    assert (nothing.status_code, nothing.json()) == (404, {"errors": []})


@pytest.mark.parametrize("headers", [{}, {"X-Vault-Token": "wrong"}])
async def test_a_missing_or_unknown_token_is_permission_denied(
    vault: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await vault.get(DATA, headers=headers)
    assert (response.status_code, response.json()) == (403, {"errors": ["permission denied"]})


async def test_a_policy_limits_a_token_to_its_paths_and_capabilities(
    state: VaultState, vault: httpx.AsyncClient
) -> None:
    state.add_token("app-token", {"secret/data/app/*": ["read"]})
    token = {"X-Vault-Token": "app-token"}
    await put(vault, {"n": 1})
    assert (await vault.get(DATA, headers=token)).status_code == 200
    denied_write = await vault.post(DATA, json={"data": {}}, headers=token)
    assert denied_write.status_code == 403
    other = await vault.get("/v1/secret/data/other", headers=token)
    assert other.status_code == 403


async def test_namespaces_hold_separate_data(vault: httpx.AsyncClient) -> None:
    await vault.post(
        DATA, json={"data": {"ns": "team"}}, headers={**ROOT, "X-Vault-Namespace": "team"}
    )
    assert (await vault.get(DATA, headers=ROOT)).status_code == 404
    team = await vault.get(DATA, headers={**ROOT, "X-Vault-Namespace": "team/"})
    assert team.json()["data"]["data"] == {"ns": "team"}


async def test_an_unknown_mount_is_404_no_handler(vault: httpx.AsyncClient) -> None:
    response = await vault.get("/v1/kv/data/app/db", headers=ROOT)
    assert response.status_code == 404
    assert "no handler for route" in response.json()["errors"][0]


async def test_nested_mounts_are_routed_whole() -> None:
    state = VaultState(mounts=["team/kv"])
    async with asgi_client(create_vault_app(state), "http://vault") as vault:
        await put(vault, {"n": 1}, path="/v1/team/kv/data/data/x")
    assert state.secret("data/x", mount="team/kv") == {"n": 1}


async def test_any_mount_exists_when_mounts_is_none() -> None:
    state = VaultState(mounts=None)
    async with asgi_client(create_vault_app(state), "http://vault") as vault:
        await put(vault, {"n": 1}, path="/v1/kv/data/app/data/db")
    assert state.secret("app/data/db", mount="kv") == {"n": 1}


async def test_fail_all_answers_503_sealed_and_is_logged(
    state: VaultState, vault: httpx.AsyncClient
) -> None:
    state.faults = FaultConfig(fail_all=True)
    response = await vault.get(DATA, headers=ROOT)
    assert (response.status_code, response.json()) == (503, {"errors": ["Vault is sealed"]})
    assert state.calls() == [Call("GET", DATA, 503)]


async def test_fail_writes_refuses_writes_and_deletes_only(
    state: VaultState, vault: httpx.AsyncClient
) -> None:
    await put(vault, {"n": 1})
    state.fail_writes = True
    assert (await put(vault, {"n": 2})).status_code == 503
    assert (await vault.delete(DATA, headers=ROOT)).status_code == 503
    assert (await vault.get(DATA, headers=ROOT)).json()["data"]["data"] == {"n": 1}


async def test_error_rate_refuses_a_share_of_calls(
    state: VaultState, vault: httpx.AsyncClient
) -> None:
    state.faults = FaultConfig(error_rate=0.5, seed=3)
    statuses = [(await vault.get(DATA, headers=ROOT)).status_code for _ in range(40)]
    assert set(statuses) == {404, 503}


async def test_rate_limit_answers_429_with_retry_after(
    state: VaultState, vault: httpx.AsyncClient
) -> None:
    state.faults = FaultConfig(rate_limit=1, burst=1)
    await vault.get(DATA, headers=ROOT)
    limited = await vault.get(DATA, headers=ROOT)
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "1"


async def test_invalid_bodies_are_400(vault: httpx.AsyncClient) -> None:
    no_data = await vault.post(DATA, json={"options": {}}, headers=ROOT)
    assert (no_data.status_code, no_data.json()) == (400, {"errors": ["no data provided"]})
    not_json = await vault.post(DATA, content=b"{", headers=ROOT)
    assert not_json.status_code == 400
