"""The aws-secretsmanager sink against hostile endpoints on loopback, and moto's server.

Issue 21: the sink had no deadline (a dripping answer ran for as long as the server liked), no
answer cap (an endless answer took 2.9 GB in 4.6 s), retried on after SIGTERM, and had no
`check`. Issue 21 "owners in sinks": two owners' entries of one key overwrote each other.
"""

from __future__ import annotations

import json
import resource
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from pydantic import SecretStr

from provisioner.errors import SinkError
from provisioner.http.transport import MAX_ANSWER_BYTES
from provisioner.model import SinkRecord
from provisioner.runtime import Halt
from provisioner.sinks.aws import SecretsManagerOptions, SecretsManagerSink
from provisioner.sinks.base import SinkContext
from tests.support.aws_support import ServedAws, free_port, served_aws
from tests.support.hostile import Answer, drip, flood, hostile_server, json_answer

pytestmark = pytest.mark.anyio

MiB = 1024 * 1024
WATCHDOG = 15.0  # far past the sink's own deadline (1 s): reaching it means there was none
NAME = "streamkap/payments-api/ingest"


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "eu-west-1",
        "AWS_CONFIG_FILE": str(tmp_path / "aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def make_sink(
    monkeypatch: pytest.MonkeyPatch,
    url: str,
    *,
    owner: str = "default",
    halt: Halt | None = None,
    sleeps: list[float] | None = None,
    timeout: float = 1.0,
) -> SecretsManagerSink:
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    slept = sleeps if sleeps is not None else []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        if halt is not None and len(slept) == 2:  # a SIGTERM during the second backoff
            halt.set("not started: stopped by SIGTERM")
            await anyio.sleep_forever()  # cut short by the halt, or the test hangs

    context = SinkContext(cwd=Path(), timeout=timeout, max_attempts=6, owner=owner, halt=halt)
    options = SecretsManagerOptions(prefix="streamkap/")
    return SecretsManagerSink("sm", options, context, sleep=sleep)


def record(client_id: str = "cid-1") -> SinkRecord:
    return SinkRecord("payments-api", "ingest", client_id, SecretStr(f"secret-of-{client_id}"))


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


@pytest.mark.usefixtures("aws_env")
async def test_an_endless_answer_stops_at_the_cap_and_is_not_retried(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = peak_rss_mib()
    with hostile_server(flood(b'{"SecretString": "' + b"x" * 65536)) as server:
        sink = make_sink(monkeypatch, server.url)
        try:
            with pytest.raises(SinkError) as caught:
                await sink.read("payments-api", "ingest")
        finally:
            await sink.aclose()
    assert f"larger than {MAX_ANSWER_BYTES // MiB} MiB" in str(caught.value)
    assert len(server.requests) == 1  # the same answer again would be as large: no retry
    assert peak_rss_mib() - before < 16 * MAX_ANSWER_BYTES / MiB  # never the flood (512 MiB)


@pytest.mark.usefixtures("aws_env")
async def test_a_dripping_answer_fails_at_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    body = json.dumps({"Name": NAME, "padding": "x" * 4000}).encode()
    with hostile_server(drip(body, interval=0.05)) as server:  # 200 s to send it all
        sink = make_sink(monkeypatch, server.url)
        try:
            with anyio.move_on_after(WATCHDOG) as watchdog, pytest.raises(SinkError) as caught:
                await sink.read("payments-api", "ingest")
        finally:
            await sink.aclose()
    assert not watchdog.cancelled_caught, "no deadline: the watchdog ended the read"
    assert "no complete answer within 1 s (PROVISIONER_TIMEOUT)" in str(caught.value)
    assert len(server.requests) == 6  # each attempt had the deadline; then it gave up


@pytest.mark.usefixtures("aws_env")
async def test_no_retry_once_the_run_halts(monkeypatch: pytest.MonkeyPatch) -> None:
    busy = json_answer(503, {"__type": "ServiceUnavailable", "message": "try later"})
    with hostile_server(lambda request: busy) as server:
        sink = make_sink(monkeypatch, server.url, halt=Halt())
        try:
            with pytest.raises(SinkError, match="read: not retried: stopped by SIGTERM"):
                await sink.read("payments-api", "ingest")
        finally:
            await sink.aclose()
    assert len(server.requests) == 2  # the signal came in the second backoff: no third try


@pytest.mark.usefixtures("aws_env")
async def test_a_run_already_halted_tries_once(monkeypatch: pytest.MonkeyPatch) -> None:
    busy = json_answer(503, {"__type": "ServiceUnavailable", "message": "try later"})
    halt = Halt()
    halt.set("not started: stopped by SIGTERM")
    with hostile_server(lambda request: busy) as server:
        sink = make_sink(monkeypatch, server.url, halt=halt)
        try:
            with pytest.raises(SinkError, match="ServiceUnavailable"):
                await sink.read("payments-api", "ingest")
        finally:
            await sink.aclose()
    assert len(server.requests) == 1


@pytest.fixture
def aws() -> Iterator[ServedAws]:
    with served_aws() as server:
        yield server


@pytest.mark.usefixtures("aws_env")
async def test_the_check_is_one_read_that_writes_nothing(
    monkeypatch: pytest.MonkeyPatch, aws: ServedAws
) -> None:
    sink = make_sink(monkeypatch, aws.url, timeout=30)
    aws.start_recording()
    try:
        assert await sink.check() is None
    finally:
        await sink.aclose()
    assert aws.recorded_actions() == ["DescribeSecret"]
    assert aws.boto3().list_secrets()["SecretList"] == []


@pytest.mark.usefixtures("aws_env")
async def test_a_refused_check_is_reported_with_the_policy_it_needs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    denied = Answer(
        400,
        json.dumps({"__type": "AccessDeniedException", "message": "not authorized"}).encode(),
        headers={"Content-Type": "application/x-amz-json-1.1"},
    )
    with hostile_server(lambda request: denied) as server:
        sink = make_sink(monkeypatch, server.url)
        try:
            problem = await sink.check()
        finally:
            await sink.aclose()
    assert problem is not None
    assert "AccessDeniedException" in str(problem)
    assert "secretsmanager:DescribeSecret" in str(problem)
    assert len(server.requests) == 1  # a refusal is not retried


@pytest.mark.usefixtures("aws_env")
async def test_an_unreachable_endpoint_fails_the_check_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slept: list[float] = []
    sink = make_sink(monkeypatch, f"http://127.0.0.1:{free_port()}", sleeps=slept)
    try:
        problem = await sink.check()
    finally:
        await sink.aclose()
    assert problem is not None
    assert "EndpointConnectionError" in str(problem)
    assert slept == []  # not retried: a store never reached is misconfigured, not busy


@pytest.mark.usefixtures("aws_env")
async def test_another_owners_secret_is_never_overwritten(
    monkeypatch: pytest.MonkeyPatch, aws: ServedAws
) -> None:
    theirs = make_sink(monkeypatch, aws.url, owner="team-a", timeout=30)
    ours = make_sink(monkeypatch, aws.url, owner="team-b", timeout=30)
    try:
        await theirs.write(record("cid-a"))
        with pytest.raises(SinkError, match="belongs to owner 'team-a', not 'team-b'"):
            await ours.read("payments-api", "ingest")
        with pytest.raises(SinkError, match="belongs to owner 'team-a', not 'team-b'"):
            await ours.write(record("cid-b"))
        await ours.delete("payments-api", "ingest", "cid-a")  # a prune of ours: not theirs
        assert await theirs.read("payments-api", "ingest") == "cid-a"
    finally:
        await theirs.aclose()
        await ours.aclose()
    tags = {t["Key"]: t["Value"] for t in aws.boto3().describe_secret(SecretId=NAME)["Tags"]}
    assert tags["streamkap-provisioner-owner"] == "team-a"


@pytest.mark.usefixtures("aws_env")
async def test_a_secret_written_before_owners_were_recorded_is_the_default_owners(
    monkeypatch: pytest.MonkeyPatch, aws: ServedAws
) -> None:
    document = {"client_id": "cid-old", "secret": "old-secret-value", "service": "payments-api"}
    document["credential"] = "ingest"
    aws.boto3().create_secret(
        Name=NAME,
        SecretString=json.dumps(document),
        Tags=[
            {"Key": "managed-by", "Value": "streamkap-provisioner"},
            {"Key": "streamkap-provisioner-key", "Value": "payments-api/ingest"},
        ],
    )
    default = make_sink(monkeypatch, aws.url, timeout=30)
    other = make_sink(monkeypatch, aws.url, owner="team-a", timeout=30)
    try:
        assert await default.read("payments-api", "ingest") == "cid-old"
        await default.write(record("cid-new"))
        assert await default.read("payments-api", "ingest") == "cid-new"
        with pytest.raises(SinkError, match="belongs to owner 'default', not 'team-a'"):
            await other.read("payments-api", "ingest")
    finally:
        await default.aclose()
        await other.aclose()
