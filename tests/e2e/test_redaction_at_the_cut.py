"""Issue 21, item 4: an echoed secret never survives in fragments where an error cuts the echo.

Every error path that shows part of an answer is fed, by a server on loopback, a long echo that
puts a registered secret (or its base64 form) across the cut at every offset; no 8-character
fragment of the secret or of its base64 form may appear in the error.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from pydantic import SecretStr

from provisioner.errors import DETAIL_CHARS, ProvisionerError
from provisioner.logs import SHOWN_CHARS, forget_secrets, register_secret
from provisioner.sinks.aws import SecretsManagerOptions, SecretsManagerSink
from provisioner.sinks.base import SinkContext
from provisioner.sinks.kubernetes import KubernetesSink, KubernetesSinkOptions
from provisioner.sinks.vault import VaultSink, VaultSinkOptions
from provisioner.streamkap import ApiConfig, Requests, StreamkapClient
from tests.support.factories import no_sleep
from tests.support.hostile import Answer, Request, hostile_server, json_answer
from tests.support.kube_support import write_kubeconfig

pytestmark = pytest.mark.anyio

SECRET = "Zq7-live-secret-9f8e7d6c5b4a3210"
TOKEN = "bearer-token-5c2e8f0a91d3-e7"
FORMS = {"plain": SECRET, "base64": base64.b64encode(SECRET.encode()).decode()}
FRAGMENT = 8


@pytest.fixture(autouse=True)
def _registered() -> Iterator[None]:
    register_secret(SECRET)
    register_secret(TOKEN)
    yield
    forget_secrets()


def echoes(limit: int) -> Iterator[tuple[str, str]]:
    """(form, echo) with the form starting at every offset from wholly inside to wholly past
    the cut at `limit` characters."""
    for name, form in FORMS.items():
        for inside in range(len(form) + 1):
            yield name, "x" * (limit - inside) + form + " tail" * 20


def fragments_in(message: str) -> list[str]:
    """Every 8-character fragment of the secret, or of its base64 form, found in `message`."""
    return [
        form[start : start + FRAGMENT]
        for form in FORMS.values()
        for start in range(len(form) - FRAGMENT + 1)
        if form[start : start + FRAGMENT] in message
    ]


class Echo:
    """What the hostile server answers next: set before each call."""

    def __init__(self) -> None:
        self.text = ""


async def assert_no_fragment(echo: Echo, limit: int, fail: Callable[[], Awaitable[object]]) -> None:
    """Feed every echo through `fail` (which must raise) and check each error's text."""
    for name, text in echoes(limit):
        echo.text = text
        with pytest.raises(ProvisionerError) as caught:
            await fail()
        message = f"{caught.value} {caught.value!r}"
        assert "xxxxxxxx" in message, message  # the echo is shown, up to the cut
        assert not fragments_in(message), (name, text.index(FORMS[name]), message)


# --- the Streamkap API: a JSON detail and a plain-text 500 -------------------------------------


@asynccontextmanager
async def api_client(url: str) -> AsyncIterator[StreamkapClient]:
    config = ApiConfig(url, access_token=SecretStr(TOKEN), max_attempts=1)
    async with StreamkapClient(Requests(config, sleep=no_sleep)) as client:
        yield client


async def test_the_apis_json_detail_is_redacted_before_it_is_cut() -> None:
    echo = Echo()
    with hostile_server(lambda request: json_answer(400, {"detail": echo.text})) as api:
        async with api_client(api.url) as client:
            await assert_no_fragment(echo, DETAIL_CHARS, client.list_roles)


async def test_a_plain_text_500_is_redacted_before_it_is_cut() -> None:
    echo = Echo()

    def plain(request: Request) -> Answer:
        return Answer(500, echo.text.encode(), headers={"Content-Type": "text/plain"})

    with hostile_server(plain) as api:

        async def fail() -> object:
            async with api_client(api.url) as client:  # a new one: no breaker left open
                return await client.list_roles()

        await assert_no_fragment(echo, DETAIL_CHARS, fail)


# --- sinks: Vault, Kubernetes, AWS Secrets Manager ----------------------------------------------


async def test_vaults_errors_are_redacted_before_they_are_cut(tmp_path: Path) -> None:
    echo = Echo()
    with hostile_server(lambda request: json_answer(400, {"errors": [echo.text]})) as vault:
        options = VaultSinkOptions(address=vault.url, mount="secret")
        context = SinkContext(cwd=tmp_path, environ={"VAULT_TOKEN": TOKEN}, max_attempts=1)
        sink = VaultSink("vault", options, context, sleep=no_sleep)
        try:
            await assert_no_fragment(echo, SHOWN_CHARS, lambda: sink.read("api", "c"))
        finally:
            await sink.aclose()


async def test_kubernetes_errors_are_redacted_before_they_are_cut(tmp_path: Path) -> None:
    echo = Echo()
    status = {"kind": "Status", "status": "Failure", "code": 422}
    with hostile_server(lambda request: json_answer(422, {**status, "message": echo.text})) as kube:
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", kube.url, token=TOKEN)
        context = SinkContext(cwd=tmp_path, environ={"KUBECONFIG": str(kubeconfig)}, max_attempts=1)
        sink = KubernetesSink(
            "k8s", KubernetesSinkOptions(namespace="payments"), context, sleep=no_sleep
        )
        try:
            await assert_no_fragment(echo, SHOWN_CHARS, lambda: sink.read("api", "c"))
        finally:
            await sink.aclose()


async def test_aws_errors_are_redacted_before_they_are_cut(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    echo = Echo()

    def refuse(request: Request) -> Answer:
        body = {"__type": "ValidationException", "message": echo.text}
        headers = {"Content-Type": "application/x-amz-json-1.1"}
        return Answer(400, json.dumps(body).encode(), headers)

    with hostile_server(refuse) as aws:
        for name, value in {
            "AWS_ENDPOINT_URL": aws.url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": "eu-west-1",
            "AWS_CONFIG_FILE": str(tmp_path / "aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "aws-credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_MAX_ATTEMPTS": "1",
        }.items():
            monkeypatch.setenv(name, value)
        context = SinkContext(cwd=tmp_path, max_attempts=1)
        sink = SecretsManagerSink("aws", SecretsManagerOptions(), context, sleep=no_sleep)
        try:
            await assert_no_fragment(echo, SHOWN_CHARS, lambda: sink.read("api", "c"))
        finally:
            await sink.aclose()
