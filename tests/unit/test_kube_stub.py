"""The Secrets stub speaks the API server's rules: auth, patches, selectors, preconditions."""

from __future__ import annotations

import httpx
import pytest

from provisioner.simulator.kubernetes import KUBE_TOKEN, KubeState, create_kube_app

BASE = "/api/v1/namespaces/payments/secrets"


def secret(name: str, **labels: str) -> dict[str, object]:
    return {"metadata": {"name": name, "labels": labels}, "data": {"k": "dg=="}}


@pytest.mark.anyio
async def test_without_a_token_401() -> None:
    app = create_kube_app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://s") as c:
        answer = await c.get(BASE)
    assert (answer.status_code, answer.json()["reason"]) == (401, "Unauthorized")


@pytest.mark.anyio
async def test_create_replace_patch_apply_list_delete() -> None:
    app = create_kube_app(KubeState(namespaces={"payments"}))
    headers = {"Authorization": f"Bearer {KUBE_TOKEN}"}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://s", headers=headers) as c:
        created = (await c.post(BASE, json=secret("a", team="x"))).json()
        assert (await c.post(BASE, json=secret("a"))).json()["reason"] == "AlreadyExists"
        stale = {**created, "data": {"k": "dw=="}}
        assert (await c.put(f"{BASE}/a", json=stale)).status_code == 200
        assert (await c.put(f"{BASE}/a", json=stale)).status_code == 409  # old resourceVersion
        merge = {"Content-Type": "application/merge-patch+json"}
        patched = await c.patch(f"{BASE}/a", json={"data": {"k": None, "n": "eA=="}}, headers=merge)
        assert patched.json()["data"] == {"n": "eA=="}
        apply = {"Content-Type": "application/apply-patch+yaml"}
        body = "apiVersion: v1\nkind: Secret\nmetadata: {name: b, labels: {team: y}}\n"
        assert (await c.patch(f"{BASE}/b", content=body, headers=apply)).status_code == 400
        made = await c.patch(f"{BASE}/b?fieldManager=me", content=body, headers=apply)
        assert made.status_code == 201
        listed = (await c.get(BASE, params={"labelSelector": "team=x"})).json()
        assert [item["metadata"]["name"] for item in listed["items"]] == ["a"]
        listed = (await c.get(BASE, params={"labelSelector": "team!=x"})).json()
        assert [item["metadata"]["name"] for item in listed["items"]] == ["b"]
        stale_delete = {
            "preconditions": {"resourceVersion": created["metadata"]["resourceVersion"]}
        }
        answer = await c.request("DELETE", f"{BASE}/a", json=stale_delete)
        assert answer.status_code == 409
        assert (await c.delete(f"{BASE}/a")).status_code == 200
        assert (await c.get(f"{BASE}/a")).status_code == 404
        bad = await c.post(BASE, json=secret("Bad_Name"))
        assert (bad.status_code, bad.json()["reason"]) == (422, "Invalid")
        missing = await c.post("/api/v1/namespaces/nope/secrets", json=secret("a"))
        assert missing.status_code == 404
