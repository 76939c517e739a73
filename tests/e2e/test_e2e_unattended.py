"""Safe to leave unattended (issue 13): the CLI in a subprocess, the simulator on a socket.

Owners, forced rotation, the change budget, prune cleaning the sinks, healing from a sibling sink,
and a plan that says what it could not plan.
"""

from __future__ import annotations

import json
import signal
import subprocess
from datetime import timedelta
from pathlib import Path

from dotenv import dotenv_values

from provisioner.model import owner_key, split_owner
from provisioner.simulator import CredentialRecord
from tests.support.served import Served, run_cli
from tests.support.watch import watched


def manifest(
    services: dict[str, list[str]],
    *,
    owner: str | None = None,
    sinks: str = "[files, dotenv]",
    defaults: str = "",
) -> str:
    """A manifest with file and dotenv sinks; `services` maps a service to its credentials."""
    lines = ["version: 1"]
    if owner:
        lines.append(f"owner: {owner}")
    lines += ["defaults:", "  roles: [read_only]", f"  sinks: {sinks}"]
    lines += [f"  {line}" for line in defaults.splitlines()]
    lines += [
        "sinks:",
        "  files: {type: file, path: ./secrets}",
        "  dotenv: {type: env, path: ./out/app.env}",
        "services:",
    ]
    for service, names in services.items():
        lines += [f"  - name: {service}", "    credentials:"]
        lines += [f"      - name: {name}" for name in names]
    return "\n".join(lines) + "\n"


def workdir_with(root: Path, text: str) -> Path:
    (root / "manifests").mkdir(parents=True, exist_ok=True)
    (root / "manifests" / "services.yaml").write_text(text)
    return root


def cli(
    sim: Served, workdir: Path, *args: str, code: int = 0, **env: str
) -> subprocess.CompletedProcess[str]:
    env.setdefault("PROVISIONER_LOG_LEVEL", "error")
    env.setdefault("PROVISIONER_LOG_FORMAT", "console")  # the lines people read, asserted below
    result = run_cli(*args, "manifests", cwd=workdir, env=sim.env(**env))
    assert result.returncode == code, result.stderr
    return result


def apply(sim: Served, workdir: Path, *extra: str, code: int = 0, **env: str) -> str:
    """Apply; return what it told people (stderr), and forget the calls made so far."""
    sim.state.reset_calls()
    return cli(sim, workdir, "apply", *extra, code=code, **env).stderr


def of_owner(sim: Served, owner: str) -> dict[str, CredentialRecord]:
    """Live credentials whose marker names `owner`, by key."""
    found = {}
    for record in sim.state.live():
        qualified = owner_key(record.description)
        if qualified is not None and split_owner(qualified)[0] == owner:
            found[split_owner(qualified)[1]] = record
    return found


def file_record(workdir: Path, key: str) -> dict[str, str] | None:
    path = workdir / "secrets" / f"{key}.json"
    return json.loads(path.read_text()) if path.exists() else None


def dotenv_pair(workdir: Path, key: str) -> tuple[str | None, str | None]:
    prefix = "STREAMKAP_" + key.upper().replace("/", "_").replace("-", "_")
    values = dotenv_values(workdir / "out" / "app.env")
    return values.get(f"{prefix}_CLIENT_ID"), values.get(f"{prefix}_SECRET")


# --- owners -----------------------------------------------------------------------------------


def test_two_owners_share_an_account_and_prune_leaves_the_others_alone(
    sim: Served, tmp_path: Path
) -> None:
    team_a = workdir_with(tmp_path / "a", manifest({"api": ["ingest", "old"]}, owner="team-a"))
    theirs_manifest = manifest({"api": ["ingest"], "web": ["x"]}, owner="team-b")
    team_b = workdir_with(tmp_path / "b", theirs_manifest)
    apply(sim, team_a)
    apply(sim, team_b)
    theirs = {key: r.client_id for key, r in of_owner(sim, "team-b").items()}
    assert set(theirs) == {"api/ingest", "web/x"}
    assert set(of_owner(sim, "team-a")) == {"api/ingest", "api/old"}

    (team_a / "manifests" / "services.yaml").write_text(
        manifest({"api": ["ingest"]}, owner="team-a")
    )
    planned = cli(sim, team_a, "plan", "--prune").stderr
    assert "Plan: 0 to create, 0 to replace, 1 to delete, 1 unchanged." in planned
    assert planned.count("team-b") == 1  # listed once in the summary, never as an action
    assert "2 of other owners left alone (team-b 2)." in planned
    pruned = apply(sim, team_a, "--prune")
    assert "- api/old (" in pruned
    assert "2 of other owners left alone." in pruned
    assert [c.method for c in sim.state.write_calls()] == ["DELETE"]
    assert set(of_owner(sim, "team-a")) == {"api/ingest"}
    assert {key: r.client_id for key, r in of_owner(sim, "team-b").items()} == theirs

    sim.state.reset_calls()
    apply(sim, team_b, "--prune")  # and the other way round: team-a's credential is not its orphan
    assert sim.state.write_calls() == []


# --- forced rotation ---------------------------------------------------------------------------

THREE = {"api": ["ingest", "report"], "web": ["x"]}


def test_replace_rotates_exactly_one_credential(sim: Served, tmp_path: Path) -> None:
    workdir = workdir_with(tmp_path, manifest(THREE))
    apply(sim, workdir)
    before = {key: r.client_id for key, r in of_owner(sim, "default").items()}

    planned = cli(sim, workdir, "plan", "--replace", "api/report").stderr
    assert f"~ api/report ({before['api/report']}): forced (--replace); then delete it" in planned
    assert "Plan: 0 to create, 1 to replace, 0 to delete, 2 unchanged." in planned
    done = apply(sim, workdir, "--replace", "api/report")
    assert "Applied: 0 created, 1 replaced, 0 deleted, 2 unchanged, 0 failed." in done
    after = {key: r.client_id for key, r in of_owner(sim, "default").items()}
    assert [key for key in before if before[key] != after[key]] == ["api/report"]
    record = file_record(workdir, "api/report")
    assert record is not None
    assert record["client_id"] == after["api/report"]
    assert dotenv_pair(workdir, "api/report")[0] == after["api/report"]

    sim.state.reset_calls()
    cli(sim, workdir, "apply")  # forcing is for one run only
    assert sim.state.write_calls() == []


def test_replace_of_an_unknown_key_is_a_usage_error_before_any_call(
    sim: Served, tmp_path: Path
) -> None:
    workdir = workdir_with(tmp_path, manifest(THREE))
    sim.state.reset_calls()
    result = cli(sim, workdir, "apply", "--replace", "api/nope", code=2)
    assert "--replace api/nope: no such credential in the manifests" in result.stderr
    assert sim.state.calls() == []


# --- the change budget -------------------------------------------------------------------------


def twenty(count: int = 20) -> dict[str, list[str]]:
    return {"svc": [f"c{index:02d}" for index in range(count)]}


def snapshot(workdir: Path) -> dict[str, bytes]:
    """Every file under the sinks, to prove nothing was written."""
    return {str(p): p.read_bytes() for p in sorted(workdir.rglob("*")) if p.is_file()}


def test_a_prune_of_15_of_20_is_refused_by_default_and_done_with_max_changes_all(
    sim: Served, tmp_path: Path
) -> None:
    workdir = workdir_with(tmp_path, manifest(twenty()))
    apply(sim, workdir)
    (workdir / "manifests" / "services.yaml").write_text(manifest(twenty(5)))
    before = snapshot(workdir)

    refused = apply(sim, workdir, "--prune", code=2)
    assert refused.count("  - svc/c") == 15  # the plan is shown
    assert (
        "error: 15 changes exceed the change budget of 5 (25% of 20 managed credentials, "
        "at least 5): 15 to delete (orphan): svc/c05, svc/c06, svc/c07, svc/c08, svc/c09 "
        "and 10 more. Nothing was changed." in refused
    )
    assert "--max-changes 15 (or --max-changes all)" in refused
    assert sim.state.write_calls() == []
    assert snapshot(workdir) == before
    assert len(of_owner(sim, "default")) == 20

    done = apply(sim, workdir, "--prune", "--max-changes", "all")
    assert "Applied: 0 created, 0 replaced, 15 deleted, 5 unchanged, 0 failed." in done
    assert set(of_owner(sim, "default")) == {f"svc/c{index:02d}" for index in range(5)}


def test_30_rotations_due_at_once_are_rolled_over_several_runs(sim: Served, tmp_path: Path) -> None:
    workdir = workdir_with(tmp_path, manifest(twenty(30), defaults="rotate_after: 90d"))
    apply(sim, workdir)
    old = {key: r.client_id for key, r in of_owner(sim, "default").items()}
    sim.state.age(None, timedelta(days=100))

    planned = cli(sim, workdir, "plan").stderr
    assert "Plan: 0 to create, 7 to replace, 0 to delete, 0 unchanged." in planned
    assert "23 changes deferred to later runs (change budget)." in planned
    rotated_per_run = []
    for _ in range(6):
        done = apply(sim, workdir)
        now = {key: r.client_id for key, r in of_owner(sim, "default").items()}
        rotated_per_run.append(sum(1 for key in old if now[key] != old[key]))
        if rotated_per_run[-1] == 30:
            break
    assert rotated_per_run == [7, 14, 21, 28, 30]
    assert "Applied: 0 created, 2 replaced, 0 deleted, 28 unchanged, 0 failed." in done
    for key, record in of_owner(sim, "default").items():
        stored = file_record(workdir, key)
        assert stored is not None
        assert (stored["client_id"], stored["secret"]) == (record.client_id, record.secret)
    sim.state.reset_calls()
    cli(sim, workdir, "apply")
    assert sim.state.write_calls() == []


def test_an_over_budget_run_cycle_is_skipped_and_the_loop_goes_on(
    sim: Served, tmp_path: Path
) -> None:
    workdir = workdir_with(tmp_path, manifest(twenty(8)))
    apply(sim, workdir)
    (workdir / "manifests" / "services.yaml").write_text(manifest(twenty(1)))
    sim.state.reset_calls()
    with watched("run", "manifests", "--prune", "--every", "1s", cwd=workdir, env=sim.env()) as run:
        run.wait_event("cycle.skipped", cycle=1)
        run.wait_event("cycle.skipped", cycle=2)
        assert run.stop(signal.SIGTERM) == 0, run.text
    assert sim.state.write_calls() == []
    assert "7 changes exceed the change budget of 5" in run.wait_event("cycle.skipped")["reason"]


# --- prune cleans the sinks --------------------------------------------------------------------


def test_prune_removes_the_orphans_record_from_the_sinks(sim: Served, tmp_path: Path) -> None:
    workdir = workdir_with(tmp_path, manifest(THREE))
    apply(sim, workdir)
    gone = of_owner(sim, "default")["web/x"].client_id
    assert dotenv_pair(workdir, "web/x")[0] == gone
    (workdir / "manifests" / "services.yaml").write_text(manifest({"api": ["ingest", "report"]}))

    # Without --prune the orphan and its records stay (said at info: a quiet run keeps it silent).
    kept = apply(sim, workdir, PROVISIONER_LOG_LEVEL="info")
    assert "= web/x (" in kept
    assert file_record(workdir, "web/x") is not None

    pruned = apply(sim, workdir, "--prune")
    assert "Applied: 0 created, 0 replaced, 1 deleted, 2 unchanged, 0 failed." in pruned
    assert sim.state.get(gone) is None
    assert file_record(workdir, "web/x") is None
    assert dotenv_pair(workdir, "web/x") == (None, None)
    assert dotenv_pair(workdir, "api/ingest")[0] == of_owner(sim, "default")["api/ingest"].client_id
    assert file_record(workdir, "api/report") is not None


# --- healing from a sibling sink ---------------------------------------------------------------


def token_calls(sim: Served) -> int:
    return sum(1 for call in sim.state.calls() if call.path == "/auth/access-token")


def test_a_lost_file_sink_is_restored_from_dotenv_without_a_new_credential(
    sim: Served, tmp_path: Path
) -> None:
    workdir = workdir_with(tmp_path, manifest(THREE))
    apply(sim, workdir)
    live = {key: (r.client_id, r.secret) for key, r in of_owner(sim, "default").items()}
    for path in (workdir / "secrets").rglob("*.json"):
        path.unlink()  # a lost volume

    sim.state.reset_calls()
    planned = cli(sim, workdir, "plan").stderr
    client_id = live["api/ingest"][0]
    assert "To restore from a sibling sink:" in planned
    assert f"> api/ingest ({client_id}): lost-secret (copy from dotenv; files holds nothing)" in (
        planned
    )
    assert "Plan: 0 to create, 0 to replace, 3 to restore, 0 to delete, 0 unchanged." in planned
    assert token_calls(sim) == 1 + 3  # the provisioner's login, and one proof per credential
    assert sim.state.write_calls() == []

    done = apply(sim, workdir)
    assert "Applied: 0 created, 0 replaced, 3 restored, 0 deleted, 0 unchanged, 0 failed." in done
    assert sim.state.write_calls() == []  # no create, no delete
    assert {key: (r.client_id, r.secret) for key, r in of_owner(sim, "default").items()} == live
    for key, (cid, secret) in live.items():
        stored = file_record(workdir, key)
        assert stored is not None
        assert (stored["client_id"], stored["secret"]) == (cid, secret)
        assert stored["credential"] == key.split("/")[1]
    for record in sim.state.live():
        assert record.secret not in done

    sim.state.reset_calls()
    cli(sim, workdir, "apply")
    assert sim.state.write_calls() == []


def test_a_sink_newly_added_to_a_credential_is_filled_from_its_sibling(
    sim: Served, tmp_path: Path
) -> None:
    workdir = workdir_with(tmp_path, manifest(THREE, sinks="[files]"))
    apply(sim, workdir)
    (workdir / "manifests" / "services.yaml").write_text(manifest(THREE))  # dotenv added
    done = apply(sim, workdir)
    assert "Applied: 0 created, 0 replaced, 3 restored, 0 deleted, 0 unchanged, 0 failed." in done
    assert sim.state.write_calls() == []
    for key, record in of_owner(sim, "default").items():
        assert dotenv_pair(workdir, key) == (record.client_id, record.secret)


def test_a_copy_whose_secret_the_api_refuses_is_replaced_instead(
    sim: Served, tmp_path: Path
) -> None:
    workdir = workdir_with(tmp_path, manifest({"api": ["ingest"]}))
    apply(sim, workdir)
    old = of_owner(sim, "default")["api/ingest"].client_id
    (workdir / "secrets" / "api" / "ingest.json").unlink()
    env_file = workdir / "out" / "app.env"
    text = env_file.read_text()
    env_file.write_text(
        text.replace("STREAMKAP_API_INGEST_SECRET='", "STREAMKAP_API_INGEST_SECRET='x")
    )

    done = apply(sim, workdir)
    assert f"~ api/ingest ({old}): lost-secret (files holds nothing)" in done
    assert "Applied: 0 created, 1 replaced, 0 deleted, 0 unchanged, 0 failed." in done
    new = of_owner(sim, "default")["api/ingest"]
    assert new.client_id != old
    assert dotenv_pair(workdir, "api/ingest") == (new.client_id, new.secret)
