"""The kubernetes sink against the Secrets stub on a socket, read back by the official client."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr, ValidationError

from provisioner.errors import SinkError, UsageError
from provisioner.model import SinkRecord
from provisioner.simulator.kubernetes import KUBE_TOKEN, KubeState
from provisioner.sinks import parse_sink_uri, sink_type
from provisioner.sinks.base import NOTHING, SinkContext
from provisioner.sinks.kubernetes import (
    KEY_ANNOTATION,
    MANAGED_BY,
    MANAGER,
    KubernetesSink,
    KubernetesSinkOptions,
)
from provisioner.sinks.kubernetes import config as kube_config
from tests.support.kube_support import ServedKube, register_in_process

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def _registered() -> None:
    register_in_process()


async def _no_sleep(seconds: float) -> None:
    return None


def open_sink(kube: ServedKube, **options: Any) -> KubernetesSink:
    context = SinkContext(
        cwd=kube.kubeconfig.parent, environ={"KUBECONFIG": str(kube.kubeconfig)}, max_attempts=3
    )
    chosen = KubernetesSinkOptions(**{"namespace": "payments", **options})
    return KubernetesSink("k8s", chosen, context, sleep=_no_sleep)


@pytest.fixture
async def sink(kube: ServedKube) -> AsyncIterator[KubernetesSink]:
    opened = open_sink(kube)
    yield opened
    await opened.aclose()


def record(client_id: str = "cid-1", secret: str = "s3cr3t-1", **extra: Any) -> SinkRecord:  # noqa: S107
    return SinkRecord(
        service="payments-api",
        credential="ingest_main",
        client_id=client_id,
        secret=SecretStr(secret),
        description="Payments ingestion",
        role_ids=("r1", "r2"),
        **extra,
    )


NAME = "streamkap-payments-api-ingest-main"  # `_` made `-`


async def test_a_written_secret_reads_back_here_and_with_the_official_client(
    sink: KubernetesSink, kube: ServedKube
) -> None:
    assert await sink.write(record()) == NOTHING
    assert await sink.read("payments-api", "ingest_main") == "cid-1"
    found = await sink.read_record("payments-api", "ingest_main")
    assert found is not None
    assert found.secret is not None
    assert (found.secret.get_secret_value(), found.role_ids) == ("s3cr3t-1", ("r1", "r2"))

    secret = kube.official().read_namespaced_secret(NAME, "payments")
    assert secret.type == "Opaque"
    assert secret.metadata.labels[MANAGED_BY] == MANAGER
    assert secret.metadata.annotations[KEY_ANNOTATION] == "payments-api/ingest_main"
    data = {k: base64.b64decode(v).decode() for k, v in secret.data.items()}
    assert data == {
        "client_id": "cid-1",
        "secret": "s3cr3t-1",
        "service": "payments-api",
        "credential": "ingest_main",
        "description": "Payments ingestion",
        "role_ids": '["r1", "r2"]',
        "permission_ids": "[]",
    }
    listed = kube.official().list_namespaced_secret(
        "payments", label_selector=f"{MANAGED_BY}={MANAGER}"
    )
    assert [item.metadata.name for item in listed.items] == [NAME]


async def test_nothing_there_reads_as_none(sink: KubernetesSink) -> None:
    assert await sink.read("payments-api", "ingest_main") is None
    assert await sink.read_record("payments-api", "ingest_main") is None


async def test_a_replace_is_undone_while_it_still_holds_the_new_client_id(
    sink: KubernetesSink, kube: ServedKube
) -> None:
    await sink.write(record())
    before = kube.state.decoded("payments", NAME)
    previous = await sink.write(record("cid-2", "s3cr3t-2"))
    assert previous.client_id == "cid-1"
    assert kube.state.decoded("payments", NAME) != before
    await sink.restore("payments-api", "ingest_main", "cid-2", previous)
    assert kube.state.decoded("payments", NAME) == before
    # Holding cid-1 again, a late undo of cid-2 leaves it alone.
    await sink.restore("payments-api", "ingest_main", "cid-2", NOTHING)
    assert kube.state.decoded("payments", NAME) == before


async def test_undoing_a_first_write_deletes_the_secret(
    sink: KubernetesSink, kube: ServedKube
) -> None:
    previous = await sink.write(record())
    await sink.restore("payments-api", "ingest_main", "cid-1", previous)
    assert kube.state.decoded("payments", NAME) is None


async def test_delete_removes_it_only_while_it_holds_that_client_id(
    sink: KubernetesSink, kube: ServedKube
) -> None:
    await sink.write(record())
    await sink.delete("payments-api", "ingest_main", "cid-other")
    assert kube.state.decoded("payments", NAME) is not None
    await sink.delete("payments-api", "ingest_main", "cid-1")
    assert kube.state.decoded("payments", NAME) is None
    await sink.delete("payments-api", "ingest_main", "cid-1")  # already gone: fine
    deletes = [c for c in kube.state.calls() if c.method == "DELETE"]
    assert [c.status for c in deletes] == [200]


async def test_a_secret_this_tool_did_not_create_is_never_touched(
    sink: KubernetesSink, kube: ServedKube
) -> None:
    kube.state.put("payments", NAME, {"client_id": "theirs", "secret": "keep-me"})
    with pytest.raises(SinkError, match="not created by streamkap-provisioner") as failed:
        await sink.write(record())
    assert not failed.value.retryable
    with pytest.raises(SinkError, match="never overwritten"):
        await sink.read("payments-api", "ingest_main")
    await sink.delete("payments-api", "ingest_main", "theirs")
    assert kube.state.decoded("payments", NAME) == {"client_id": "theirs", "secret": "keep-me"}
    assert kube.state.write_calls() == []  # the put above is not a call


async def test_a_conflict_is_read_again_and_retried(sink: KubernetesSink, kube: ServedKube) -> None:
    await sink.write(record())
    kube.state.reset_calls()
    kube.state.conflicts = 1  # another writer gets in between our read and our replace
    previous = await sink.write(record("cid-2", "s3cr3t-2"))
    assert previous.client_id == "cid-1"
    puts = [c.status for c in kube.state.calls() if c.method == "PUT"]
    assert puts == [409, 200]
    assert await sink.read("payments-api", "ingest_main") == "cid-2"


async def test_server_errors_are_retried_and_reported_as_retryable(
    sink: KubernetesSink, kube: ServedKube
) -> None:
    kube.state.fail_next(503, 2)
    assert await sink.read("payments-api", "ingest_main") is None  # third attempt answers
    kube.state.fail_next(429)
    with pytest.raises(SinkError) as failed:
        await sink.write(record())  # the engine retries writes
    assert failed.value.retryable
    assert failed.value.retry_after == 0
    assert await sink.write(record()) == NOTHING


async def test_forbidden_names_the_verb_and_namespace(
    sink: KubernetesSink, kube: ServedKube
) -> None:
    kube.state.forbid("create", "payments")
    with pytest.raises(SinkError) as failed:
        await sink.write(record())
    message = str(failed.value)
    assert "may not create secrets in namespace 'payments'" in message
    assert "get, list, create, update, patch, delete" in message
    assert not failed.value.retryable


async def test_a_refused_token_is_a_clear_error(kube: ServedKube) -> None:
    kube.state.tokens = {"another"}
    sink = open_sink(kube)
    try:
        with pytest.raises(SinkError, match="401 Unauthorized"):
            await sink.read("payments-api", "ingest_main")
    finally:
        await sink.aclose()


async def test_secrets_never_appear_in_errors(sink: KubernetesSink, kube: ServedKube) -> None:
    kube.state.fail_next(500, 10)
    with pytest.raises(SinkError) as failed:
        await sink.write(record(secret="top-secret-value"))
    assert "top-secret-value" not in str(failed.value)
    assert KUBE_TOKEN not in str(failed.value)


async def test_a_name_template(kube: ServedKube) -> None:
    sink = open_sink(kube, name="app.{service}.{credential}")
    try:
        await sink.write(record())
    finally:
        await sink.aclose()
    assert kube.state.decoded("payments", "app.payments-api.ingest-main") is not None


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("streamkap-{service}", "both {service} and {credential}"),
        ("{service}-{credential}-{other}", "only {service} and {credential}"),
        ("x" * 130 + "-{service}-{credential}", "at most 253"),
        ("a/{service}-{credential}", "only letters"),
        ("-{service}-{credential}", "not a DNS-1123 name"),
    ],
)
def test_bad_name_templates_fail_validation(template: str, problem: str) -> None:
    with pytest.raises(ValidationError, match=problem.replace("{", r"\{").replace("}", r"\}")):
        KubernetesSinkOptions(namespace="payments", name=template)


def test_bad_namespace_fails_validation() -> None:
    with pytest.raises(ValidationError, match="not a namespace name"):
        KubernetesSinkOptions(namespace="Payments_")


def test_the_sink_uri() -> None:
    definition = parse_sink_uri("default", "k8s:payments")
    assert definition.type == "k8s"
    assert definition.options == KubernetesSinkOptions(namespace="payments")
    assert sink_type("kubernetes") is KubernetesSink
    with pytest.raises(UsageError, match="k8s:NAMESPACE"):
        parse_sink_uri("default", "k8s:a/b")


def test_without_the_extra_validation_names_the_install_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        kube_config, "client_missing", lambda: "needs the `kubernetes` extra: pip install x"
    )
    with pytest.raises(ValidationError, match="pip install"):
        KubernetesSinkOptions(namespace="payments")


def test_no_cluster_is_a_usage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    context = SinkContext(cwd=tmp_path, environ={"HOME": str(tmp_path)})
    with pytest.raises(UsageError, match="no Kubernetes cluster"):
        KubernetesSink("k8s", KubernetesSinkOptions(namespace="payments"), context)


async def test_in_cluster_config_is_used_inside_a_pod(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The service account's token and CA, KUBERNETES_SERVICE_HOST/_PORT: https to the stub."""
    import trustme  # the test extra pins it: a missing one must fail, not skip

    from provisioner.simulator import serve_in_thread
    from provisioner.simulator.kubernetes import create_kube_app

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    account = tmp_path / "serviceaccount"
    account.mkdir()
    (account / "token").write_text(KUBE_TOKEN)
    (account / "namespace").write_text("payments")
    ca.cert_pem.write_to_path(str(account / "ca.crt"))
    pem = tmp_path / "server.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(pem))
    monkeypatch.setattr(kube_config, "SERVICE_ACCOUNT", account)
    state = KubeState(namespaces={"payments"})
    with serve_in_thread(create_kube_app(state), ssl_certfile=str(pem)) as url:
        port = httpx.URL(url).port
        environ = {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": str(port)}
        context = SinkContext(cwd=tmp_path, environ=environ)
        sink = KubernetesSink("k8s", KubernetesSinkOptions(namespace="payments"), context)
        try:
            await sink.write(record())
        finally:
            await sink.aclose()
    assert state.decoded("payments", NAME) is not None


async def test_mapped_fields_are_the_data_keys_and_read_back(kube: ServedKube) -> None:
    """`fields` names the Secret's data keys; the sink reads its client_id and secret back."""
    sink = open_sink(
        kube, fields={"STREAMKAP_CLIENT_ID": "client_id", "STREAMKAP_SECRET": "secret"}
    )
    try:
        await sink.write(record())
        assert await sink.read("payments-api", "ingest_main") == "cid-1"
        found = await sink.read_record("payments-api", "ingest_main")
    finally:
        await sink.aclose()
    assert found is not None
    assert found.secret is not None
    assert found.secret.get_secret_value() == "s3cr3t-1"
    secret = kube.official().read_namespaced_secret(NAME, "payments")
    data = {k: base64.b64decode(v).decode() for k, v in secret.data.items()}
    assert data == {"STREAMKAP_CLIENT_ID": "cid-1", "STREAMKAP_SECRET": "s3cr3t-1"}


def test_fields_must_map_client_id_and_secret() -> None:
    with pytest.raises(ValidationError, match="secret must be mapped"):
        KubernetesSinkOptions(namespace="payments", fields={"ID": "client_id"})
