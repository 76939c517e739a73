"""End to end: the CLI in a subprocess against the simulator served on a real socket."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from dotenv import dotenv_values

from provisioner.model import marked_description
from provisioner.simulator import FaultConfig, SimulatorState
from tests.support.served import Served, run_cli, served

SERVICES = ["payments-api", "orders", "billing", "search"]
PER_SERVICE = 8


def big_manifest() -> str:
    lines = [
        "version: 1",
        "defaults:",
        "  roles: [read_only]",
        "  sinks: [files, dotenv]",
        "sinks:",
        "  files: {type: file, path: ./secrets}",
        "  dotenv: {type: env, path: ./out/app.env}",
        "services:",
    ]
    for service in SERVICES:
        lines += [f"  - name: {service}", "    credentials:"]
        for index in range(PER_SERVICE):
            lines += [f"      - name: cred-{index}", f"        description: {service} #{index}"]
    return "\n".join(lines) + "\n"


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / "services.yaml").write_text(big_manifest())
    return tmp_path


def apply(sim: Served, cwd: Path, *extra: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run_cli("apply", "manifests", *extra, cwd=cwd, env=sim.env(**env))


def test_apply_creates_and_delivers_every_credential(sim: Served, workdir: Path) -> None:
    result = apply(sim, workdir)
    assert result.returncode == 0, result.stderr
    changes = [line for line in result.stderr.splitlines() if '"event": "plan.change"' in line]
    assert len(changes) == len(SERVICES) * PER_SERVICE  # the changes, shown once before writing
    live = sim.state.live()
    assert len(live) == len(SERVICES) * PER_SERVICE
    env_file = workdir / "out" / "app.env"
    from_dotenv = dotenv_values(env_file)
    for record in live:
        key = record.description.rsplit("[provisioner:", 1)[1].rstrip("]")  # type: ignore[union-attr]
        service, name = key.split("/")
        stored = json.loads((workdir / "secrets" / service / f"{name}.json").read_text())
        assert stored["client_id"] == record.client_id
        assert stored["secret"] == record.secret
        assert stored["role_ids"] == ["role-read_only"] or stored["role_ids"]
        prefix = f"STREAMKAP_{service}_{name}".upper().replace("-", "_")
        assert from_dotenv[f"{prefix}_CLIENT_ID"] == record.client_id
        assert from_dotenv[f"{prefix}_SECRET"] == record.secret
    assert (env_file.stat().st_mode & 0o777) == 0o600


def test_env_file_is_read_back_exactly_by_bash(sim: Served, workdir: Path) -> None:
    assert apply(sim, workdir).returncode == 0
    dumped = subprocess.run(
        ["bash", "-c", "set -a; . ./out/app.env; env -0"],
        cwd=workdir,
        capture_output=True,
        check=True,
    ).stdout.decode()
    variables = dict(item.split("=", 1) for item in dumped.split("\0") if "=" in item)
    secrets_by_id = {r.client_id: r.secret for r in sim.state.live()}
    ids = {
        k: v
        for k, v in variables.items()
        if k.endswith("_CLIENT_ID") and k.startswith("STREAMKAP_")
    }
    assert len(ids) == len(secrets_by_id)
    for name, client_id in ids.items():
        assert variables[name.removesuffix("_CLIENT_ID") + "_SECRET"] == secrets_by_id[client_id]


def test_second_apply_makes_no_write_call(sim: Served, workdir: Path) -> None:
    assert apply(sim, workdir).returncode == 0
    sim.state.reset_calls()
    second = apply(sim, workdir)
    assert second.returncode == 0, second.stderr
    assert sim.state.write_calls() == []
    assert "0 created, 0 replaced, 0 deleted, 32 unchanged, 0 failed" in second.stderr


def test_credentials_without_the_marker_are_never_touched(sim: Served, workdir: Path) -> None:
    by_hand = sim.state.add_credential(description="payments-api ingest made by hand")
    lookalike = sim.state.add_credential(description="[provisioner:payments-api/cred-0] copy")
    result = apply(sim, workdir, "--prune")
    assert result.returncode == 0, result.stderr
    assert {by_hand.client_id, lookalike.client_id} <= {r.client_id for r in sim.state.live()}


def test_plan_writes_nothing_and_reports_pending_changes(sim: Served, workdir: Path) -> None:
    before = run_cli("plan", "manifests", "--detailed-exitcode", cwd=workdir, env=sim.env())
    assert before.returncode == 3, before.stderr
    assert "Plan: 32 to create, 0 to replace, 0 to delete, 0 unchanged." in before.stderr
    assert sim.state.write_calls() == []
    assert not (workdir / "secrets").exists()
    assert apply(sim, workdir).returncode == 0
    after = run_cli(
        "plan", "manifests", "--detailed-exitcode", "--json", cwd=workdir, env=sim.env()
    )
    assert after.returncode == 0, after.stderr
    document = json.loads(after.stdout)
    assert document["summary"]["unchanged"] == 32
    assert document["changes"] is False


def test_invalid_manifest_exits_2_without_any_call(sim: Served, workdir: Path) -> None:
    (workdir / "manifests" / "broken.yaml").write_text("version: 1\nservices:\n  - name: Bad!\n")
    result = apply(sim, workdir)
    assert result.returncode == 2
    assert "broken.yaml:3: services[0].name: invalid name" in result.stderr
    assert "Traceback" not in result.stderr
    assert sim.state.calls() == []


def test_unknown_role_exits_2_after_reading_roles_only(sim: Served, workdir: Path) -> None:
    (workdir / "manifests" / "more.yaml").write_text(
        "version: 1\nservices:\n  - name: extra\n    credentials:\n"
        "      - name: one\n        roles: [admn]\n        sinks: [files]\n"
    )
    (workdir / "manifests" / "services.yaml").write_text(big_manifest())
    result = apply(sim, workdir)
    assert result.returncode == 2, result.stderr
    unknown = "more.yaml:6: services[extra].credentials[one].roles: unknown role 'admn'"
    assert unknown in result.stderr
    assert "error: 1 problem(s) in the manifests" in result.stderr  # the known roles: a hint
    assert {call.method for call in sim.state.calls()} <= {"GET", "POST"}
    assert sim.state.write_calls() == []


def test_an_unwritable_sink_blocks_only_its_credentials_and_exits_1(
    sim: Served, workdir: Path
) -> None:
    (workdir / "blocked").write_text("a file where a directory should be")
    (workdir / "manifests" / "more.yaml").write_text(
        "version: 1\nsinks:\n  broken: {type: file, path: ./blocked}\nservices:\n"
        "  - name: extra\n    credentials:\n      - name: one\n        sinks: [broken]\n"
        "        roles: [Admin]\n"
    )
    result = apply(sim, workdir)
    assert result.returncode == 1
    assert (
        "cannot plan extra/one: sink 'broken': cannot write records in blocked: not a directory"
        in (result.stderr)
    )
    assert "32 created, 0 replaced, 0 deleted, 0 unchanged, 0 failed, 1 could not be planned." in (
        result.stderr
    )
    keys = {r.description for r in sim.state.live()}
    assert marked_description(None, "extra/one") not in keys  # never created: it would be undone


def test_rate_limits_and_503s_are_retried(sim: Served, workdir: Path) -> None:
    sim.state.faults = FaultConfig(rate_limit=40, burst=5, error_rate=0.1, seed=7)
    result = apply(sim, workdir, PROVISIONER_MAX_ATTEMPTS="10")
    assert result.returncode == 0, result.stderr
    statuses = {call.status for call in sim.state.calls()}
    assert {429, 503} <= statuses
    assert len(sim.state.live()) == 32


def test_a_422_is_not_retried_and_its_field_errors_reach_the_user(workdir: Path) -> None:
    with served(SimulatorState(permissions={"perm-read"})) as sim:
        (workdir / "manifests" / "more.yaml").write_text(
            "version: 1\nservices:\n  - name: extra\n    credentials:\n      - name: one\n"
            "        permissions: [perm-read, perm-nope]\n        sinks: [files]\n"
        )
        result = apply(sim, workdir)
        creates = [c for c in sim.state.write_calls() if c.status == 422]
    assert result.returncode == 1
    assert "failed: extra/one: POST /auth/client-credentials: HTTP 422: " in result.stderr
    assert "permission_ids.1: Unknown permission id 'perm-nope'" in result.stderr
    assert len(creates) == 1


def test_plan_with_an_unreadable_sink_says_so_and_exits_1(sim: Served, workdir: Path) -> None:
    (workdir / "blocked").write_text("a file where a directory should be")
    (workdir / "manifests" / "more.yaml").write_text(
        "version: 1\nsinks:\n  broken: {type: file, path: ./blocked}\nservices:\n"
        "  - name: extra\n    credentials:\n      - name: one\n        sinks: [broken]\n"
        "        roles: [Admin]\n"
    )
    result = run_cli("plan", "manifests", "--detailed-exitcode", cwd=workdir, env=sim.env())
    assert result.returncode == 1
    assert result.stderr.count("cannot plan extra/one: sink 'broken': ") == 1
    assert "could not be planned." in result.stderr.splitlines()[-1]
