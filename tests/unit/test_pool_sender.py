"""The pool sends the request `AsyncClient.request` would build, straight through its transport."""

from __future__ import annotations

import anyio
import httpx
import pytest

from provisioner.streamkap.pool import Pool

HEADERS = {"User-Agent": "streamkap-provisioner", "Accept": "application/json"}


def pool_over(handler: httpx.MockTransport, base: str = "https://api.example/v1") -> Pool:
    return Pool(base, concurrency=2, timeout=7, headers=HEADERS, transport=handler)


@pytest.mark.parametrize("path", ["/auth/client-credentials", "/auth/client-credentials/cc%2F1"])
def test_the_request_is_the_one_the_client_builds(path: str) -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json={"client_id": "cc_1"})

    body = {"description": "x [provisioner:a/b]", "role_ids": ["r"]}

    async def main() -> httpx.Response:
        async with pool_over(httpx.MockTransport(answer)).connection() as sender:
            return await sender.request(
                "POST",
                path,
                json=body,
                headers={"Authorization": "Bearer t"},
                extensions={"max_answer_bytes": 10},
            )

    response = anyio.run(main)
    client = httpx.AsyncClient(base_url="https://api.example/v1", timeout=7, headers=HEADERS)
    expected = client.build_request(
        "POST",
        path,
        json=body,
        headers={"Authorization": "Bearer t"},
        extensions={"max_answer_bytes": 10},
    )
    (sent,) = seen
    assert sent.method == expected.method
    assert sent.url == expected.url
    assert sent.headers.multi_items() == expected.headers.multi_items()
    assert sent.content == expected.content
    assert sent.extensions == expected.extensions
    assert response.json() == {"client_id": "cc_1"}
    assert response.request is sent


def test_a_failed_request_names_the_request() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    async def main() -> None:
        async with pool_over(httpx.MockTransport(refuse)).connection() as sender:
            await sender.request("GET", "/auth/roles")

    with pytest.raises(httpx.ConnectError) as caught:
        anyio.run(main)
    assert caught.value.request.url == "https://api.example/v1/auth/roles"
