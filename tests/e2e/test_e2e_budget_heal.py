"""The change budget counts every destructive change, and heal never goes back (issue 21).

The CLI in a subprocess against the simulator on a socket; where the API must misbehave in one
precise way, through a small forwarding server on loopback that tampers with one call.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from provisioner.simulator import ADMIN_CLIENT_ID
from tests.e2e.test_e2e_unattended import (
    apply,
    cli,
    dotenv_pair,
    file_record,
    manifest,
    of_owner,
    snapshot,
    twenty,
    workdir_with,
)
from tests.support.hostile import Answer, Request, hostile_server
from tests.support.served import Served

Tamper = Callable[[Request, int], Request | Answer]


@contextmanager
def forwarding(sim: Served, tamper: Tamper) -> Iterator[str]:
    """A server on loopback that passes every call on to the simulator; `tamper` may change a
    request (given with how many came before it) or answer it instead. Yields its URL."""
    seen = 0
    with httpx.Client(base_url=sim.url, timeout=10) as upstream:

        def handle(request: Request) -> Answer:
            nonlocal seen
            changed = tamper(request, seen)
            seen += 1
            if isinstance(changed, Answer):
                return changed
            keep = {"authorization", "content-type", "accept"}
            headers = {k: v for k, v in changed.headers.items() if k in keep}
            answer = upstream.request(
                changed.method, changed.path, content=changed.body, headers=headers
            )
            return Answer(answer.status_code, answer.content, {"Content-Type": "application/json"})

        with hostile_server(handle) as server:
            yield server.url


def live_ids(sim: Served, owner: str = "default") -> dict[str, str]:
    return {key: record.client_id for key, record in of_owner(sim, owner).items()}


# --- 1. the budget counts what the sinks do not hold ------------------------------------------


def test_the_only_sink_pointed_at_an_empty_directory_stops_before_any_write(
    sim: Served, tmp_path: Path
) -> None:
    workdir = workdir_with(tmp_path, manifest(twenty(), sinks="[files]"))
    apply(sim, workdir)
    sim.state.age(None, timedelta(days=30))  # in use for a while: no killed run's leftovers
    before = live_ids(sim)
    shutil.rmtree(workdir / "secrets")  # the sink's path now names an empty directory
    (workdir / "secrets").mkdir()

    refused = apply(sim, workdir, code=2)
    assert refused.count("  ~ svc/c") == 20  # the plan is shown
    assert (
        "error: 20 changes exceed the change budget of 5 (25% of 20 managed credentials, "
        "at least 5): 20 to replace (lost-secret): svc/c00" in refused
    )
    assert sim.state.write_calls() == []
    assert live_ids(sim) == before
    assert list((workdir / "secrets").rglob("*.json")) == []


def test_a_wrong_owner_stops_with_exit_2_naming_the_owner_that_holds_the_keys(
    sim: Served, tmp_path: Path
) -> None:
    three = {"api": ["ingest", "report"], "web": ["x"]}
    workdir = workdir_with(tmp_path, manifest(three, owner="payments"))
    apply(sim, workdir)
    held = live_ids(sim, "payments")
    (workdir / "manifests" / "services.yaml").write_text(manifest(three, owner="paymnets"))
    before = snapshot(workdir)

    refused = apply(sim, workdir, code=2)
    assert "owner 'paymnets' holds no credential in this account" in refused
    assert "did you mean `owner: payments`?" in refused
    assert sim.state.write_calls() == []
    assert snapshot(workdir) == before
    assert live_ids(sim, "payments") == held
    assert live_ids(sim, "paymnets") == {}


# --- 2. updates that turn into replaces stay within the budget -------------------------------


def test_updates_the_api_can_only_make_as_replaces_are_cut_to_the_budget(
    sim: Served, tmp_path: Path
) -> None:
    workdir = workdir_with(tmp_path, manifest(twenty()))
    apply(sim, workdir)
    before = live_ids(sim)
    services = workdir / "manifests" / "services.yaml"
    services.write_text(services.read_text().replace("roles: [read_only]", "roles: [admin]"))
    sim.state.patch_supported = False  # an API without PATCH

    done = apply(sim, workdir)
    assert done.count("  ^ svc/c") == 20  # planned as updates in place
    assert "Applied: 0 created, 5 replaced, 0 deleted, 0 unchanged, 0 failed." in done
    assert "15 changes deferred to later runs (change budget)." in done
    writes = [call.method for call in sim.state.write_calls()]
    assert writes.count("POST") == 5
    assert writes.count("DELETE") == 5
    after = live_ids(sim)
    changed = [key for key in before if after[key] != before[key]]
    assert len(changed) == 5
    for key in after:  # what was not done was not half done: every sink holds the live one
        assert dotenv_pair(workdir, key)[0] == after[key]

    # Later runs carry on within the budget: 5 more each.
    apply(sim, workdir)
    assert sum(1 for key in before if live_ids(sim)[key] != before[key]) == 10


# --- 3. heal: newest wins ----------------------------------------------------------------------


def test_a_stale_backup_never_brings_back_the_rotated_secret(sim: Served, tmp_path: Path) -> None:
    """A leaked A is rotated to B with grace; the file volume is lost and the dotenv file comes
    back from a backup holding A. No sink holds B's secret: it is replaced, A is deleted."""
    workdir = workdir_with(tmp_path, manifest({"api": ["ingest"]}, defaults="grace: 1h"))
    apply(sim, workdir)
    leaked = live_ids(sim)["api/ingest"]
    backup = (workdir / "out" / "app.env").read_bytes()
    apply(sim, workdir, "--replace", "api/ingest")
    rotated = live_ids(sim)["api/ingest"]
    assert rotated != leaked
    assert sim.state.get(leaked) is not None  # in grace
    shutil.rmtree(workdir / "secrets")
    (workdir / "out" / "app.env").write_bytes(backup)

    done = apply(sim, workdir)
    assert "lost-secret" in done
    assert sim.state.get(leaked) is None  # the leaked one is gone
    assert sim.state.get(rotated) is not None  # the newest is never deleted as a duplicate
    new = of_owner(sim, "default")["api/ingest"]
    assert new.client_id not in (leaked, rotated)
    assert dotenv_pair(workdir, "api/ingest") == (new.client_id, new.secret)
    stored = file_record(workdir, "api/ingest")
    assert stored is not None
    assert stored["client_id"] == new.client_id


THREE_SINKS = """version: 1
defaults:
  roles: [read_only]
  sinks: [files, dotenv, backup]
  grace: 1h
sinks:
  files: {type: file, path: ./secrets}
  dotenv: {type: env, path: ./out/app.env}
  backup: {type: env, path: ./out/backup.env}
services:
  - name: api
    credentials:
      - name: ingest
"""


def test_siblings_holding_an_older_credential_are_rewritten_from_the_newest(
    sim: Served, tmp_path: Path
) -> None:
    """Two of three sinks come back from a backup holding A; the third holds B, the newest.
    The two are rewritten with B (no API write), never the third with A, and B stays live."""
    workdir = workdir_with(tmp_path, THREE_SINKS)
    apply(sim, workdir)
    older = live_ids(sim)["api/ingest"]
    saved = {name: (workdir / "out" / name).read_bytes() for name in ("app.env", "backup.env")}
    apply(sim, workdir, "--replace", "api/ingest")
    newest = of_owner(sim, "default")["api/ingest"]
    for name, content in saved.items():
        (workdir / "out" / name).write_bytes(content)

    done = apply(sim, workdir)
    assert f"> api/ingest ({newest.client_id}): lost-secret (copy from files;" in done
    assert "1 restored" in done
    assert sim.state.write_calls() == []
    assert sim.state.get(newest.client_id) is not None
    assert sim.state.get(older) is not None  # still in its grace
    assert dotenv_pair(workdir, "api/ingest") == (newest.client_id, newest.secret)
    backup = (workdir / "out" / "backup.env").read_text()
    assert newest.client_id in backup
    assert older not in backup
    stored = file_record(workdir, "api/ingest")
    assert stored is not None
    assert stored["client_id"] == newest.client_id

    sim.state.reset_calls()
    cli(sim, workdir, "apply")
    assert sim.state.write_calls() == []


# --- 4. restores are never deferred behind rotations -----------------------------------------


def test_a_lost_sink_is_healed_while_rotations_wait_for_the_budget(
    sim: Served, tmp_path: Path
) -> None:
    workdir = workdir_with(tmp_path, manifest(twenty(), defaults="rotate_after: 90d"))
    apply(sim, workdir)
    sim.state.age(None, timedelta(days=100))
    shutil.rmtree(workdir / "secrets")  # the file volume is lost

    done = apply(sim, workdir)
    assert "Applied: 0 created, 5 replaced, 15 restored, 0 deleted" in done
    writes = [call.method for call in sim.state.write_calls()]
    assert writes.count("POST") == 5  # the rotations; the restores made no API write
    for key, record in of_owner(sim, "default").items():
        stored = file_record(workdir, key)
        assert stored is not None, key
        assert (stored["client_id"], stored["secret"]) == (record.client_id, record.secret)


# --- 5. the proof login retries a transient failure ------------------------------------------


def test_one_500_on_the_proof_login_does_not_turn_a_restore_into_a_replace(
    sim: Served, tmp_path: Path
) -> None:
    workdir = workdir_with(tmp_path, manifest({"api": ["ingest"]}))
    apply(sim, workdir)
    live = of_owner(sim, "default")["api/ingest"]
    shutil.rmtree(workdir / "secrets")
    failed: list[str] = []

    def once_500(request: Request, _: int) -> Request | Answer:
        proof = request.path == "/auth/access-token" and ADMIN_CLIENT_ID.encode() not in (
            request.body
        )
        if proof and not failed:
            failed.append(request.path)
            return Answer(500, b'{"detail": "Internal Server Error"}')
        return request

    sim.state.reset_calls()
    with forwarding(sim, once_500) as url:
        done = apply(sim, workdir, STREAMKAP_HOST=url)
    assert failed
    assert "1 restored" in done
    assert sim.state.write_calls() == []
    stored = file_record(workdir, "api/ingest")
    assert stored is not None
    assert (stored["client_id"], stored["secret"]) == (live.client_id, live.secret)


# --- 6. medium and low ------------------------------------------------------------------------


def test_replace_while_an_earlier_replacement_is_in_grace_replaces_now(
    sim: Served, tmp_path: Path
) -> None:
    workdir = workdir_with(tmp_path, manifest({"api": ["ingest"]}, defaults="grace: 1h"))
    apply(sim, workdir)
    first = live_ids(sim)["api/ingest"]
    apply(sim, workdir, "--replace", "api/ingest")
    second = live_ids(sim)["api/ingest"]

    done = apply(sim, workdir, "--replace", "api/ingest")
    assert f"~ api/ingest ({second}): forced (--replace; cuts the grace of {first} short" in done
    assert "1 replaced" in done
    third = of_owner(sim, "default")["api/ingest"]
    assert third.client_id not in (first, second)
    assert sim.state.get(first) is None  # at most two live: the one the sinks held, and the new
    assert sim.state.get(second) is not None
    assert dotenv_pair(workdir, "api/ingest") == (third.client_id, third.secret)


def test_a_credential_dated_in_year_9999_neither_kills_plan_nor_apply(
    sim: Served, tmp_path: Path
) -> None:
    defaults = "rotate_after: 90d\ngrace: 1h"
    workdir = workdir_with(tmp_path, manifest({"api": ["ingest"]}, defaults=defaults))
    apply(sim, workdir)
    record = of_owner(sim, "default")["api/ingest"]
    far = datetime(9999, 12, 31, 23, 0, tzinfo=UTC)
    sim.state.age(record.client_id, record.created_at - far)  # "older" by a negative period
    shutil.rmtree(workdir / "secrets")

    done = apply(sim, workdir)  # the plan it shows first, then the run: neither overflows
    assert "lost-secret (copy from dotenv" in done
    assert "rotates 9999-12-31T23:59:59Z" in done
    assert "1 restored" in done
    assert sim.state.write_calls() == []


def test_a_roles_update_keeps_the_marker_when_the_api_cuts_descriptions(
    sim: Served, tmp_path: Path
) -> None:
    """An API that keeps 24 characters of a description: a PATCH that sent one would come
    back (and be stored) without its marker, and the credential would leave management."""
    text = manifest({"api": ["ingest"]}).replace(
        "- name: ingest", "- name: ingest\n        description: Ingest of payments events"
    )
    workdir = workdir_with(tmp_path, text)
    apply(sim, workdir)
    before = of_owner(sim, "default")["api/ingest"]
    services = workdir / "manifests" / "services.yaml"
    services.write_text(services.read_text().replace("roles: [read_only]", "roles: [admin]"))

    def cap_descriptions(request: Request, _: int) -> Request | Answer:
        if request.method != "PATCH" or not request.body:
            return request
        body = json.loads(request.body)
        if isinstance(body.get("description"), str):
            body["description"] = body["description"][:24]
        return Request(request.method, request.path, request.headers, json.dumps(body).encode())

    sim.state.reset_calls()
    with forwarding(sim, cap_descriptions) as url:
        done = apply(sim, workdir, STREAMKAP_HOST=url)
    assert "1 updated" in done
    after = of_owner(sim, "default")["api/ingest"]  # still marked as ours
    assert after.client_id == before.client_id
    assert after.role_ids == ("role-admin",)
    assert after.description == before.description
    sim.state.reset_calls()
    cli(sim, workdir, "apply")
    assert sim.state.write_calls() == []


def test_a_marker_followed_by_a_newline_is_not_ours(sim: Served, tmp_path: Path) -> None:
    theirs = sim.state.add_credential(
        description="[provisioner:api/ingest]\n", role_ids=("role-read-only",)
    )
    workdir = workdir_with(tmp_path, manifest({"api": ["ingest"]}))

    done = apply(sim, workdir)
    assert "+ api/ingest: missing" in done
    assert theirs.client_id not in done
    assert sim.state.get(theirs.client_id) == theirs  # never changed nor deleted
    assert [call.method for call in sim.state.write_calls()] == ["POST"]
