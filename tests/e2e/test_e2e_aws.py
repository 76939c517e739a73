"""The aws-secretsmanager sink against moto's server mode on loopback, driven by the real SDK."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from provisioner.model import owner_key
from tests.support.aws_support import ServedAws, entry_point_dir, free_port, served_aws
from tests.support.hostile import drip, hostile_server
from tests.support.served import Served, human_text, run_cli
from tests.support.vault_support import ServedVault, served_vault
from tests.support.watch import watched

pytestmark = pytest.mark.e2e

MANIFEST = """version: 1
defaults:
  roles: [read_only]
  sinks: [sm]
sinks:
  sm: {{type: aws-secretsmanager, prefix: streamkap/{fields}}}
services:
  - name: payments-api
    credentials:
      - name: ingest
      - name: export
"""


@pytest.fixture
def aws() -> Iterator[ServedAws]:
    with served_aws() as server:
        yield server


def environment(sim: Served, aws: ServedAws, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = sim.env(**aws.env(tmp_path), PROVISIONER_MAX_ATTEMPTS="2", **extra)
    env = {k: v for k, v in env.items() if k not in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE")}
    env["PYTHONPATH"] = os.pathsep.join([str(entry_point_dir(tmp_path)), env["PYTHONPATH"]])
    return env


def current(aws: ServedAws, name: str) -> dict[str, Any]:
    # The stage is named: moto's server answers a bare read with a stale version after an undo.
    answer = aws.boto3().get_secret_value(SecretId=name, VersionStage="AWSCURRENT")
    document: dict[str, Any] = json.loads(answer["SecretString"])
    return document


def test_apply_writes_tagged_secrets_and_a_second_apply_writes_nothing(
    sim: Served, aws: ServedAws, tmp_path: Path
) -> None:
    (tmp_path / "m.yaml").write_text(MANIFEST.format(fields=""))
    env = environment(sim, aws, tmp_path)
    first = run_cli("apply", "m.yaml", cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr
    live = {owner_key(r.description): r for r in sim.state.live()}
    for key in ("payments-api/ingest", "payments-api/export"):
        document = current(aws, f"streamkap/{key}")
        assert document["client_id"] == live[key].client_id
        assert document["secret"] == live[key].secret
        assert (document["service"], document["credential"]) == tuple(key.split("/"))
        tags = aws.boto3().describe_secret(SecretId=f"streamkap/{key}")["Tags"]
        assert {(t["Key"], t["Value"]) for t in tags} == {
            ("managed-by", "streamkap-provisioner"),
            ("streamkap-provisioner-key", key),
            ("streamkap-provisioner-owner", "default"),  # the run's owner (issue 21)
        }
        assert live[key].secret not in first.stderr + first.stdout  # never logged

    sim.state.reset_calls()
    aws.start_recording()
    second = run_cli("apply", "m.yaml", cwd=tmp_path, env=env)
    assert second.returncode == 0, second.stderr
    assert sim.state.write_calls() == []
    actions = aws.recorded_actions()
    assert actions, "the second run reads what the sink holds"
    assert set(actions) <= {"GetSecretValue", "DescribeSecret"}


def test_a_sink_uri_and_a_mapped_layout_read_back_by_boto3(
    sim: Served, aws: ServedAws, tmp_path: Path
) -> None:
    fields = ", fields: {SPRING_CLIENT_ID: client_id, STREAMKAP_CLIENT_SECRET: secret}"
    (tmp_path / "m.yaml").write_text(MANIFEST.format(fields=fields))
    env = environment(sim, aws, tmp_path)
    assert run_cli("apply", "m.yaml", cwd=tmp_path, env=env).returncode == 0
    live = {owner_key(r.description): r for r in sim.state.live()}
    document = current(aws, "streamkap/payments-api/ingest")
    assert document == {
        "SPRING_CLIENT_ID": live["payments-api/ingest"].client_id,
        "STREAMKAP_CLIENT_SECRET": live["payments-api/ingest"].secret,
    }
    # Read back through the mapping: a second run changes nothing.
    sim.state.reset_calls()
    again = run_cli("apply", "m.yaml", cwd=tmp_path, env=env)
    assert again.returncode == 0, again.stderr
    assert sim.state.write_calls() == []

    (tmp_path / "u.yaml").write_text(
        "version: 1\nservices:\n  - name: orders\n    credentials:\n      - name: reader\n"
        "        roles: [Admin]\n"
    )
    uri = run_cli("apply", "u.yaml", "--sink", "aws-sm:from-uri/", cwd=tmp_path, env=env)
    assert uri.returncode == 0, uri.stderr
    assert current(aws, "from-uri/orders/reader")["credential"] == "reader"


def test_a_secret_without_the_managed_by_tag_is_left_alone(
    sim: Served, aws: ServedAws, tmp_path: Path
) -> None:
    aws.boto3().create_secret(Name="streamkap/payments-api/ingest", SecretString="theirs")
    (tmp_path / "m.yaml").write_text(MANIFEST.format(fields=""))
    result = run_cli("apply", "m.yaml", cwd=tmp_path, env=environment(sim, aws, tmp_path))
    assert result.returncode == 1, result.stderr
    assert "not managed by streamkap-provisioner" in result.stderr
    answer = aws.boto3().get_secret_value(SecretId="streamkap/payments-api/ingest")
    assert answer["SecretString"] == "theirs"
    keys = {owner_key(r.description) for r in sim.state.live()}
    assert keys == {"payments-api/export"}  # the failed one's credential was taken back
    assert current(aws, "streamkap/payments-api/export")["credential"] == "export"


def test_a_replace_whose_other_sink_fails_moves_awscurrent_back(
    sim: Served, aws: ServedAws, tmp_path: Path
) -> None:
    manifest = MANIFEST.replace("sinks: [sm]", "sinks: [sm, vault]").replace(
        "sinks:\n", "sinks:\n  vault: {{type: vault, address: '{vault}', mount: secret}}\n", 1
    )
    with served_vault() as vault:
        (tmp_path / "m.yaml").write_text(manifest.format(fields="", vault=vault.url))
        env = environment(sim, aws, tmp_path, **vault.env())
        first = run_cli("apply", "m.yaml", cwd=tmp_path, env=env)
        assert first.returncode == 0, first.stderr
        name = "streamkap/payments-api/ingest"
        before = current(aws, name)
        stages = aws.boto3().describe_secret(SecretId=name)["VersionIdsToStages"]

        vault_fails(vault)
        failed = run_cli(
            "apply", "m.yaml", "--replace", "payments-api/ingest", cwd=tmp_path, env=env
        )
        assert failed.returncode == 1, failed.stderr
        assert current(aws, name) == before  # AWSCURRENT moved back to the old version
        after = aws.boto3().describe_secret(SecretId=name)["VersionIdsToStages"]
        (old,) = [v for v, s in stages.items() if "AWSCURRENT" in s]
        assert "AWSCURRENT" in after[old]
        assert len(after) == 2  # the new version was written, then demoted
        live = {r.client_id for r in sim.state.live()}
        assert before["client_id"] in live


def vault_fails(vault: ServedVault) -> None:
    vault.state.fail_writes = True


def test_prune_deletes_with_a_recovery_window(sim: Served, aws: ServedAws, tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text(MANIFEST.format(fields=""))
    env = environment(sim, aws, tmp_path)
    first = run_cli("apply", "m.yaml", cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr
    (tmp_path / "m.yaml").write_text(
        MANIFEST.format(fields="").replace("      - name: export\n", "")
    )
    pruned = run_cli("apply", "m.yaml", "--prune", cwd=tmp_path, env=env)
    assert pruned.returncode == 0, pruned.stderr
    described = aws.boto3().describe_secret(SecretId="streamkap/payments-api/export")
    assert described.get("DeletedDate") is not None  # scheduled, recoverable: not gone
    aws.boto3().restore_secret(SecretId="streamkap/payments-api/export")
    assert {owner_key(r.description) for r in sim.state.live()} == {"payments-api/ingest"}


def test_without_the_aws_extra_the_manifest_is_refused_with_the_install_line(
    tmp_path: Path,
) -> None:
    (tmp_path / "m.yaml").write_text(MANIFEST.format(fields=""))
    blocker = tmp_path / "no-aws"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text("import sys\nsys.modules['aiobotocore'] = None\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STREAMKAP_", "AWS_"))}
    paths = [str(blocker), str(entry_point_dir(tmp_path)), str(Path(__file__).parents[2])]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    result = run_cli("validate", "m.yaml", cwd=tmp_path, env=env)
    assert result.returncode == 2, result.stderr
    assert "m.yaml:6" in result.stderr
    assert "pip install 'streamkap-provisioner[aws]'" in result.stderr


def test_an_unreachable_endpoint_is_one_check_and_one_cause_line(
    sim: Served, tmp_path: Path
) -> None:
    # Issue 22, point 5: 40 credentials took 28 s, 200 retry lines and 40 "cannot plan" lines.
    names = "".join(f"      - name: c{i}\n" for i in range(40))
    manifest = MANIFEST.format(fields="").split("    credentials:\n")[0]
    (tmp_path / "m.yaml").write_text(f"{manifest}    credentials:\n{names}")
    nothing_listens = ServedAws(f"http://127.0.0.1:{free_port()}")
    env = environment(sim, nothing_listens, tmp_path)
    env["PROVISIONER_MAX_ATTEMPTS"] = "6"
    for command in ("plan", "apply"):
        result = run_cli(command, "m.yaml", cwd=tmp_path, env=env)
        assert result.returncode == 1, result.stderr
        text = human_text(result.stderr)
        causes = [line for line in text.splitlines() if "could not connect" in line.lower()]
        assert len(causes) == 1, text
        assert "cannot plan 40 credentials" in causes[0]
        assert "retry.scheduled" not in result.stderr  # one check, not retried, no reads
    assert sim.state.write_calls() == []


def test_a_dripping_endpoint_and_sigterm_end_the_run_at_the_deadline(
    sim: Served, tmp_path: Path
) -> None:
    # Issue 21, point 6: a dripping answer ran past PROVISIONER_TIMEOUT and SIGTERM was ignored.
    (tmp_path / "m.yaml").write_text(MANIFEST.format(fields=""))
    body = json.dumps({"Name": "x", "padding": "x" * 4000}).encode()  # 200 s, one byte at a time
    with hostile_server(drip(body, interval=0.05)) as server:
        env = environment(sim, ServedAws(server.url), tmp_path, PROVISIONER_TIMEOUT="2")
        env["PROVISIONER_MAX_ATTEMPTS"] = "6"
        with watched("apply", "m.yaml", cwd=tmp_path, env=env) as run:
            while not server.requests:
                assert run.process.poll() is None, run.text
                time.sleep(0.05)
            code = run.stop(signal.SIGTERM, timeout=20)  # raises if the drip holds the run
    assert code == 1, run.text
    assert "PROVISIONER_TIMEOUT" in run.text
    assert len(server.requests) == 1  # one check, ended by its deadline, and no read after it
    assert sim.state.write_calls() == []
