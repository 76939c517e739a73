"""End to end, one reconciliation rule per test: the CLI in a subprocess, the simulator on a socket.

Every scenario ends with a re-run that must make no write call.
"""

from __future__ import annotations

import json
import subprocess
from datetime import timedelta
from pathlib import Path

import jsonschema
import pytest
from dotenv import dotenv_values

from provisioner.cli.render import PLAN_JSON_SCHEMA
from provisioner.model import marked_description, owner_key
from provisioner.simulator import CredentialRecord
from tests.support.served import Served, run_cli

KEYS = ("payments-api/ingest", "payments-api/reporting", "orders/cdc-reader")


def manifest(*, reporting_roles: str = "[read_only]", defaults: str = "") -> str:
    return f"""\
version: 1
defaults:
  roles: [read_only]
  sinks: [files, dotenv]
{defaults}sinks:
  files: {{type: file, path: ./secrets}}
  dotenv: {{type: env, path: ./out/app.env}}
services:
  - name: payments-api
    credentials:
      - name: ingest
        description: Payments ingestion
      - name: reporting
        roles: {reporting_roles}
  - name: orders
    credentials:
      - name: cdc-reader
"""


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "manifests").mkdir()
    write_manifest(tmp_path, manifest())
    return tmp_path


def write_manifest(workdir: Path, text: str) -> None:
    (workdir / "manifests" / "services.yaml").write_text(text)


def cli(sim: Served, workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    result = run_cli(
        *args,
        "manifests",
        cwd=workdir,
        # Plain lines, and at `info` so that runs leaving orphans in place still say so.
        env=sim.env(PROVISIONER_LOG_LEVEL="info", PROVISIONER_LOG_FORMAT="console"),
    )
    assert result.returncode == 0, result.stderr
    return result


def apply(sim: Served, workdir: Path, *extra: str) -> str:
    """Apply; return what it told people (stderr), and forget the calls made so far."""
    sim.state.reset_calls()
    return cli(sim, workdir, "apply", *extra).stderr


def assert_rerun_makes_no_write_call(sim: Served, workdir: Path, *extra: str) -> None:
    sim.state.reset_calls()
    cli(sim, workdir, "apply", *extra)
    assert sim.state.write_calls() == []
    assert sim.state.calls("PATCH") == []


def marked(sim: Served, key: str) -> list[CredentialRecord]:
    return [r for r in sim.state.live() if owner_key(r.description) == key]


def held_by_file(workdir: Path, key: str) -> str:
    service, name = key.split("/")
    document = json.loads((workdir / "secrets" / service / f"{name}.json").read_text())
    return str(document["client_id"])


def assert_converged(sim: Served, workdir: Path) -> None:
    """Exactly one live marked credential per key, its secret in both sinks."""
    dotenv = dotenv_values(workdir / "out" / "app.env")
    for key in KEYS:
        (record,) = marked(sim, key)
        service, name = key.split("/")
        stored = json.loads((workdir / "secrets" / service / f"{name}.json").read_text())
        assert (stored["client_id"], stored["secret"]) == (record.client_id, record.secret)
        prefix = f"STREAMKAP_{service}_{name}".upper().replace("-", "_")
        assert dotenv[f"{prefix}_CLIENT_ID"] == record.client_id
        assert dotenv[f"{prefix}_SECRET"] == record.secret


def test_a_secret_lost_by_every_sink_gets_a_fresh_credential(sim: Served, workdir: Path) -> None:
    apply(sim, workdir)
    old = held_by_file(workdir, "orders/cdc-reader")
    (workdir / "secrets" / "orders" / "cdc-reader.json").unlink()
    env_file = workdir / "out" / "app.env"
    kept = [line for line in env_file.read_text().splitlines() if "CDC_READER" not in line]
    env_file.write_text("\n".join(kept) + "\n")  # no sibling sink to restore it from

    shown = cli(sim, workdir, "plan").stderr
    assert (
        f"~ orders/cdc-reader ({old}): lost-secret (files holds nothing; dotenv holds nothing); "
        "then delete it" in shown
    )
    assert "Plan: 0 to create, 1 to replace, 0 to delete, 2 unchanged." in shown
    done = apply(sim, workdir)
    assert "Applied: 0 created, 1 replaced, 0 deleted, 2 unchanged, 0 failed." in done
    assert sim.state.get(old) is None
    assert_converged(sim, workdir)
    assert_rerun_makes_no_write_call(sim, workdir)


def test_role_drift_is_updated_in_place_by_patch(sim: Served, workdir: Path) -> None:
    apply(sim, workdir)
    old = held_by_file(workdir, "payments-api/reporting")
    secret = sim.state.secret_of(old)
    write_manifest(workdir, manifest(reporting_roles="[Data Admin]"))

    shown = cli(sim, workdir, "plan").stderr
    assert "To update in place:" in shown
    assert f"  ^ payments-api/reporting ({old}): drift:roles" in shown
    assert "To replace:" not in shown
    done = apply(sim, workdir)
    assert [c.status for c in sim.state.calls("PATCH")] == [200]
    assert sim.state.calls("POST", "/auth/client-credentials") == []
    assert sim.state.calls("DELETE") == []
    (record,) = marked(sim, "payments-api/reporting")
    assert (record.client_id, record.secret) == (old, secret)  # consumers keep their secret
    assert record.role_ids == ("role-data-admin",)
    assert "Applied: 0 created, 1 updated, 0 replaced, 0 deleted, 2 unchanged, 0 failed." in done
    stored = json.loads((workdir / "secrets" / "payments-api" / "reporting.json").read_text())
    assert (stored["client_id"], stored["secret"]) == (old, secret)
    assert stored["role_ids"] == ["role-data-admin"]  # the record is refreshed, as by a restore
    assert_converged(sim, workdir)
    assert_rerun_makes_no_write_call(sim, workdir)


def test_role_drift_replaces_the_credential_where_the_api_has_no_patch(
    sim: Served, workdir: Path
) -> None:
    apply(sim, workdir)
    old = {key: held_by_file(workdir, key) for key in KEYS}
    sim.state.patch_supported = False  # the older API: PATCH answers 405
    # Two credentials drift: the second learns from the first's 405 and tries no PATCH.
    write_manifest(
        workdir,
        manifest(reporting_roles="[Data Admin]", defaults="").replace(
            "description: Payments ingestion",
            "description: Payments ingestion\n        roles: [Admin]",
        ),
    )

    done = apply(sim, workdir)
    assert [c.status for c in sim.state.calls("PATCH")] == [405]  # one PATCH per run
    assert "Applied: 0 created, 2 replaced, 0 deleted, 1 unchanged, 0 failed." in done
    for key, roles in (
        ("payments-api/reporting", ("role-data-admin",)),
        (KEYS[0], ("role-admin",)),
    ):
        (record,) = marked(sim, key)
        assert record.role_ids == roles
        assert record.client_id != old[key]
        assert held_by_file(workdir, key) == record.client_id
        assert sim.state.get(old[key]) is None  # no grace: the old one is deleted
    assert_converged(sim, workdir)
    assert_rerun_makes_no_write_call(sim, workdir)


def test_a_duplicate_is_deleted_and_the_held_one_kept(sim: Served, workdir: Path) -> None:
    apply(sim, workdir)
    held = held_by_file(workdir, "payments-api/ingest")
    description = marked_description("Payments ingestion", "payments-api/ingest")
    duplicate = sim.state.add_credential(description=description, role_ids=["role-read-only"])

    done = apply(sim, workdir)
    assert f"- payments-api/ingest ({duplicate.client_id}): duplicate" in done
    assert "Applied: 0 created, 0 replaced, 1 deleted, 3 unchanged, 0 failed." in done
    assert [r.client_id for r in marked(sim, "payments-api/ingest")] == [held]
    assert_converged(sim, workdir)
    assert_rerun_makes_no_write_call(sim, workdir)


def test_an_orphan_is_kept_without_prune_and_deleted_with_it(sim: Served, workdir: Path) -> None:
    apply(sim, workdir)
    orphan = sim.state.add_credential(description=marked_description(None, "legacy/importer"))
    by_hand = sim.state.add_credential(description="legacy importer, made by hand")

    kept = apply(sim, workdir)
    assert f"= legacy/importer ({orphan.client_id}): orphan" in kept
    assert "3 unchanged, 0 failed. 1 orphan kept (--prune deletes orphans)." in kept
    assert sim.state.write_calls() == []

    pruned = apply(sim, workdir, "--prune")
    assert f"- legacy/importer ({orphan.client_id}): orphan (in no manifest)" in pruned
    assert "Applied: 0 created, 0 replaced, 1 deleted, 3 unchanged, 0 failed." in pruned
    assert sim.state.get(orphan.client_id) is None
    assert sim.state.get(by_hand.client_id) == by_hand  # no marker: never touched
    assert_converged(sim, workdir)
    assert_rerun_makes_no_write_call(sim, workdir, "--prune")


def test_credentials_older_than_rotate_after_are_rotated(sim: Served, workdir: Path) -> None:
    write_manifest(workdir, manifest(defaults="  rotate_after: 90d\n"))
    apply(sim, workdir)
    old = {key: held_by_file(workdir, key) for key in KEYS}
    sim.state.age(None, timedelta(days=100))

    done = apply(sim, workdir)
    for key in KEYS:
        assert (
            f"~ {key} ({old[key]}): rotation (100d old, rotate_after 90d); then delete it" in done
        )
    assert "Applied: 0 created, 3 replaced, 0 deleted, 0 unchanged, 0 failed." in done
    assert not {r.client_id for r in sim.state.live()} & set(old.values())
    assert_converged(sim, workdir)
    assert_rerun_makes_no_write_call(sim, workdir)


def test_grace_keeps_the_old_credential_live_until_a_later_run(sim: Served, workdir: Path) -> None:
    write_manifest(workdir, manifest(defaults="  rotate_after: 90d\n  grace: 1h\n"))
    apply(sim, workdir)
    old = {key: held_by_file(workdir, key) for key in KEYS}
    sim.state.age(None, timedelta(days=100))

    rotated = apply(sim, workdir)
    assert f"~ orders/cdc-reader ({old['orders/cdc-reader']}): rotation" in rotated
    assert "; it stays live for 1h (grace)" in rotated
    assert "Applied: 0 created, 3 replaced, 0 deleted, 0 unchanged, 0 failed." in rotated
    assert all(sim.state.get(client_id) for client_id in old.values())  # the overlap
    assert all(held_by_file(workdir, key) != old[key] for key in KEYS)

    within_grace = apply(sim, workdir)
    assert sim.state.write_calls() == []
    assert f"= orders/cdc-reader ({old['orders/cdc-reader']}): in-grace" in within_grace
    assert "3 unchanged, 0 failed. 3 superseded kept for grace." in within_grace

    sim.state.age(None, timedelta(hours=2))
    expired = apply(sim, workdir)
    assert f"- orders/cdc-reader ({old['orders/cdc-reader']}): superseded" in expired
    assert "Applied: 0 created, 0 replaced, 3 deleted, 3 unchanged, 0 failed." in expired
    assert_converged(sim, workdir)
    assert_rerun_makes_no_write_call(sim, workdir)


def test_plan_json_follows_its_schema_and_holds_no_secret(sim: Served, workdir: Path) -> None:
    apply(sim, workdir)
    (workdir / "secrets" / "orders" / "cdc-reader.json").unlink()
    sim.state.add_credential(description=marked_description(None, "legacy/importer"))

    sim.state.reset_calls()
    result = cli(sim, workdir, "plan", "--json")
    document = json.loads(result.stdout)
    jsonschema.validate(document, PLAN_JSON_SCHEMA)
    assert document["summary"] == {
        "create": 0,
        "update": 0,
        "replace": 0,
        "restore": 1,  # from the dotenv file, which still holds it
        "delete": 0,
        "unchanged": 2,
        "orphan": 1,
        "in_grace": 0,
        "deferred": 0,
        "blocked": 0,
        "other_owner": 0,
    }
    for record in sim.state.live():
        assert record.secret not in result.stdout + result.stderr
    assert sim.state.write_calls() == []
