"""Whole `provisioner apply` runs (a real subprocess) against a hostile `/project-keys`: the
independent fake behind a raw server on 127.0.0.1, some of its answers spoiled (issue 20, "Done
when", third point). Each run ends with a clear error line naming the key and the cause, no live
key that no sink holds, and no secret (a Kafka password sent, a secret answered) in its output.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.fake_api import FakeApi
from tests.support.hostile import Answer, Request, hostile_server, json_answer
from tests.support.hostile_fake import Call, HostileFake, refuse, without
from tests.support.served import human_text, run_cli

KEY = "orders-reader/stream"
KAFKA = """
        kafka:
          acls:
            - {topic: orders., pattern: prefixed, operations: [read]}"""
MANIFEST = """\
version: 1
defaults:
  kind: project-key
  sinks: [local]
sinks:
  local: {type: file, path: ./secrets}
services:
  - name: orders-reader
    credentials:
      - name: stream
        roles: [Read Only]%s
"""
#: Activation waits end fast: a key stuck in `creating` costs half a second, not five minutes.
ENV = {"PROVISIONER_ACTIVATION_TIMEOUT": "0.5", "PROVISIONER_MAX_ATTEMPTS": "2"}


def write_manifest(tmp_path: Path, *, kafka: bool) -> None:
    (tmp_path / "m.yaml").write_text(MANIFEST % (KAFKA if kafka else ""))


def held(tmp_path: Path) -> dict[str, object] | None:
    """The record the file sink holds for the key, if any."""
    path = tmp_path / "secrets" / "orders-reader" / "stream.json"
    if not path.exists():
        return None
    document: dict[str, object] = json.loads(path.read_text())
    return document


def apply(tmp_path: Path, hostile: HostileFake, url: str) -> tuple[int, str]:
    """One run; its exit code and all it wrote: stdout, stderr, its report and metrics."""
    report, metrics = tmp_path / "report.json", tmp_path / "metrics.prom"
    flags = ("--report", str(report), "--metrics-file", str(metrics))
    result = run_cli("apply", "m.yaml", *flags, cwd=tmp_path, env=hostile.env(url, **ENV))
    written = [path.read_text() for path in (report, metrics) if path.exists()]
    return result.returncode, "\n".join([result.stdout, result.stderr, *written])


def assert_no_secret(hostile: HostileFake, *outputs: str) -> None:
    everything = "\n".join(outputs)
    assert len(hostile.secrets) > 1  # the admin's, and at least one a key had
    for secret in hostile.secrets:
        assert secret not in everything


def error_lines(output: str) -> list[str]:
    return [line for line in human_text(output).splitlines() if KEY in line and "fail" in line]


def assert_nothing_unheld(hostile: HostileFake, tmp_path: Path) -> None:
    record = held(tmp_path)
    holding = {record["project_key_id"]} if record is not None else set()
    assert {key.id for key in hostile.live()} <= holding


# --- a create answered without its secrets, a key stuck in `creating`, a taken username -----


@pytest.mark.parametrize(
    ("hostile", "cause"),
    [
        pytest.param(
            HostileFake(hooks={("POST", "/project-keys"): without("kafka")}),
            "the answer carries no kafka credentials",
            id="no-kafka-secrets",
        ),
        pytest.param(
            HostileFake(hooks={("POST", "/project-keys"): without("api")}),
            "the answer carries no api credentials",
            id="no-api-secret",
        ),
        pytest.param(
            HostileFake(FakeApi(activation_reads=10**6)),
            "still creating after 0.5 s",
            id="stuck-creating",
        ),
        pytest.param(
            HostileFake(hooks={("POST", "/project-keys"): refuse(409)}),
            "Kafka username asked for is already taken",
            id="taken-username",
        ),
    ],
)
def test_a_create_gone_wrong_fails_the_run_and_leaves_no_live_key(
    tmp_path: Path, hostile: HostileFake, cause: str
) -> None:
    write_manifest(tmp_path, kafka=True)
    with hostile_server(hostile) as server:
        code, output = apply(tmp_path, hostile, server.url)
    assert code == 1, output
    (line, *_) = error_lines(output)
    assert cause in line, line
    assert held(tmp_path) is None
    assert hostile.live() == []  # a key that was made is deleted
    creates = [r for r in server.requests if (r.method, r.path) == ("POST", "/project-keys")]
    assert len(creates) == 1  # a refusal, or a key made unusable, is not tried again blindly
    assert_no_secret(hostile, output)


# --- a PATCH adding Kafka access ------------------------------------------------------------


def first_run(tmp_path: Path, hostile: HostileFake, url: str) -> str:
    """Converge the key with API access only; its id."""
    write_manifest(tmp_path, kafka=False)
    code, output = apply(tmp_path, hostile, url)
    assert code == 0, output
    (key,) = hostile.live()
    record = held(tmp_path)
    assert record is not None
    assert record["project_key_id"] == key.id
    write_manifest(tmp_path, kafka=True)
    return key.id


def test_a_patch_without_new_kafka_credentials_deletes_the_key_and_makes_it_anew(
    tmp_path: Path,
) -> None:
    """The PATCH made a Kafka user whose login the answer did not show: no sink can hold it and
    no PATCH takes it back, so the key goes and a new one is made and delivered."""
    hostile = HostileFake(hooks={("PATCH", "/project-keys/{id}"): without("new_kafka_credentials")})
    with hostile_server(hostile) as server:
        old = first_run(tmp_path, hostile, server.url)
        code, output = apply(tmp_path, hostile, server.url)
    assert code == 0, output
    warned = [line for line in human_text(output).splitlines() if f"adding access to {KEY}" in line]
    assert warned
    assert "no new_kafka_credentials" in warned[0]
    (new,) = hostile.live()
    assert new.id != old
    assert new.kafka_username is not None
    record = held(tmp_path)
    assert record is not None
    assert record["project_key_id"] == new.id
    assert record["kafka_password"] == new.kafka_password
    assert ("DELETE", f"/project-keys/{old}") in hostile.fake.calls
    assert_no_secret(hostile, output)


def test_a_patch_without_new_kafka_credentials_and_no_usable_create_fails_cleanly(
    tmp_path: Path,
) -> None:
    hostile = HostileFake()
    with hostile_server(hostile) as server:
        old = first_run(tmp_path, hostile, server.url)
        hostile.hooks[("PATCH", "/project-keys/{id}")] = without("new_kafka_credentials")
        hostile.hooks[("POST", "/project-keys")] = without("kafka")
        code, output = apply(tmp_path, hostile, server.url)
    assert code == 1, output
    text = human_text(output)
    assert "no new_kafka_credentials" in text
    (line, *_) = error_lines(output)
    assert "the answer carries no kafka credentials" in line, line
    assert hostile.live() == []  # the patched key and the one made anew both went
    assert ("DELETE", f"/project-keys/{old}") in hostile.fake.calls
    assert_no_secret(hostile, output)


def lost_answer(request: Request, call: Call) -> Answer:
    """The fake does the PATCH, then the answer is lost: a 502 in its place."""
    call()
    return json_answer(502, {"detail": "bad gateway"})


def test_a_patch_adding_kafka_whose_answer_is_lost_deletes_the_key_and_makes_it_anew(
    tmp_path: Path,
) -> None:
    """Retried, the PATCH is refused (the key has Kafka access now); the Kafka user it made is
    one no sink holds: the key goes, and a new one is made and delivered."""
    hostile = HostileFake()
    with hostile_server(hostile) as server:
        old = first_run(tmp_path, hostile, server.url)
        hostile.hooks[("PATCH", "/project-keys/{id}")] = lost_answer
        code, output = apply(tmp_path, hostile, server.url)
    assert code == 0, output
    warned = [line for line in human_text(output).splitlines() if f"adding access to {KEY}" in line]
    assert warned
    assert "its answer lost" in warned[0]
    (new,) = hostile.live()
    assert new.id != old
    record = held(tmp_path)
    assert record is not None
    assert record["project_key_id"] == new.id
    assert record["kafka_password"] == new.kafka_password
    assert ("DELETE", f"/project-keys/{old}") in hostile.fake.calls
    assert_no_secret(hostile, output)


def test_a_taken_username_on_a_patch_fails_and_leaves_the_key_as_held(tmp_path: Path) -> None:
    hostile = HostileFake()
    with hostile_server(hostile) as server:
        old = first_run(tmp_path, hostile, server.url)
        before = held(tmp_path)
        hostile.hooks[("PATCH", "/project-keys/{id}")] = refuse(409)
        code, output = apply(tmp_path, hostile, server.url)
    assert code == 1, output
    (line, *_) = error_lines(output)
    assert "Kafka username asked for is already taken" in line, line
    assert "[redacted]" in line  # the 409 echoed the password sent
    (key,) = hostile.live()
    assert key.id == old
    assert key.kafka_username is None  # refused: nothing was added
    assert held(tmp_path) == before
    assert_no_secret(hostile, output)


def test_kafka_added_but_still_creating_is_delivered_and_the_run_fails(tmp_path: Path) -> None:
    """Its secrets are shown once and its API access is the one held: delivered, not undone,
    but a key still `creating` is not converged."""
    hostile = HostileFake()
    with hostile_server(hostile) as server:
        old = first_run(tmp_path, hostile, server.url)
        hostile.fake.project_keys.activation_reads = 10**6
        code, output = apply(tmp_path, hostile, server.url)
    assert code == 1, output
    (line, *_) = error_lines(output)
    assert "delivered it, but the key is creating after the activation wait" in line, line
    (key,) = hostile.live()
    assert key.id == old
    record = held(tmp_path)
    assert record is not None
    assert record["project_key_id"] == old
    assert record["kafka_password"] == key.kafka_password
    assert_nothing_unheld(hostile, tmp_path)
    assert_no_secret(hostile, output)


# --- /project-keys down, for a run that asks for no key -------------------------------------

CLIENT_ONLY = """\
version: 1
sinks:
  local: {type: file, path: ./secrets}
services:
  - name: billing
    credentials:
      - {name: invoicer, roles: [Read Only], sinks: [local]}
"""


def test_an_outage_of_project_keys_does_not_stop_a_run_that_asks_for_none(tmp_path: Path) -> None:
    """They are listed only to retire a key whose kind changed back: that waits a run. A prune
    must not take an outage for "none", and fails."""
    (tmp_path / "m.yaml").write_text(CLIENT_ONLY)
    hostile = HostileFake(hooks={("GET", "/project-keys"): refuse(503, echo=False)})
    with hostile_server(hostile) as server:
        env = hostile.env(server.url, **ENV)
        applied = run_cli("apply", "m.yaml", cwd=tmp_path, env=env)
        pruned = run_cli("apply", "m.yaml", "--prune", cwd=tmp_path, env=env)
    assert applied.returncode == 0, applied.stderr
    assert "project_keys.unlisted" in applied.stderr
    assert "1 created" in human_text(applied.stderr)
    assert pruned.returncode != 0
    assert "GET /project-keys" in human_text(pruned.stderr)
