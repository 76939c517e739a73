"""A plan that tells the truth (issue 13, points 6 and 7): what cannot be planned is blocked and
said once per cause; sinks are checked before planning; a create says what it will make; colour
only on a terminal."""

from __future__ import annotations

import dataclasses
import io
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx
import jsonschema
import pytest

from provisioner.cli.render import (
    PLAN_JSON_SCHEMA,
    plan_json,
    render_plan,
    run_report,
    summarize,
)
from provisioner.errors import SinkError
from provisioner.logs import wants_color
from provisioner.model import Kind, Plan, Reason, Role, RunResult
from provisioner.reconcile.observe import check_sinks, read_holdings
from provisioner.reconcile.plan import plan
from provisioner.reconcile.resolve import resolve_roles
from provisioner.simulator import VAULT_ROOT_TOKEN, VaultState, create_vault_app
from provisioner.sinks.base import SinkContext
from provisioner.sinks.env import EnvSink, EnvSinkOptions
from provisioner.sinks.file import FileSink, FileSinkOptions
from provisioner.sinks.vault import VaultSink, VaultSinkOptions
from provisioner.sinks.vault.sink import LOOKUP_SELF
from tests.fakes.memory import MemorySink
from tests.support.factories import no_sleep
from tests.unit.test_plan import NOW, desired, remote

ESC = "\x1b["
DENIED = "sink 'vault': Vault refused the token"


def blocked_plan() -> Plan:
    """Three credentials blocked by one cause, one by another, one planned as a create."""
    wanted = [desired(f"c{i}") for i in range(5)]
    found = [remote("live0", key="api/c0"), remote("other", key="api/gone")]
    causes = {f"api/c{i}": DENIED for i in range(3)} | {"api/c3": "sink 'files': not a directory"}
    return plan(wanted, found, {}, now=NOW, blocked=causes)


# --- blocked: planned as nothing, said once per cause --------------------------------------------


def test_blocked_credentials_get_one_blocked_action_and_their_remote_is_no_orphan() -> None:
    the_plan = blocked_plan()
    assert [(a.key, a.kind) for a in the_plan.actions] == [
        ("api/c0", Kind.BLOCKED),
        ("api/c1", Kind.BLOCKED),
        ("api/c2", Kind.BLOCKED),
        ("api/c3", Kind.BLOCKED),
        ("api/c4", Kind.CREATE),
        ("api/gone", Kind.NOOP),  # the orphan of another key is still an orphan
    ]
    first = the_plan.actions[0]
    assert (first.reason, first.client_id, first.detail) == (Reason.SINK_ERROR, "live0", DENIED)
    assert not first.writes


def test_a_plan_of_blocked_credentials_only_has_no_changes() -> None:
    the_plan = plan([desired()], [], {}, now=NOW, blocked={"api/ingest": DENIED})
    assert not the_plan.has_changes


def test_blocked_credentials_are_reported_once_per_cause_and_counted_on_their_own() -> None:
    lines = render_plan(blocked_plan()).splitlines()
    assert lines[-3:] == [
        f"cannot plan 3 credentials (api/c0, api/c1, api/c2): {DENIED}",
        "cannot plan api/c3: sink 'files': not a directory",
        "Plan: 1 to create, 0 to replace, 0 to delete, 0 unchanged, 4 could not be planned."
        " 1 orphan kept (--prune deletes orphans).",
    ]
    assert sum(DENIED in line for line in lines) == 1


def test_many_blocked_credentials_name_three_and_count_the_rest() -> None:
    wanted = [desired(f"c{i:02}") for i in range(32)]
    the_plan = plan(wanted, [], {}, now=NOW, blocked={c.key: DENIED for c in wanted})
    (line, summary) = render_plan(the_plan).splitlines()
    assert line == f"cannot plan 32 credentials (api/c00, api/c01, api/c02 and 29 more): {DENIED}"
    assert summary.endswith("0 unchanged, 32 could not be planned.")


def test_plan_json_marks_blocked_actions_and_counts_them() -> None:
    document = plan_json(blocked_plan())
    jsonschema.validate(document, PLAN_JSON_SCHEMA)
    assert document["summary"]["blocked"] == 4
    assert document["summary"]["unchanged"] == 0
    assert document["actions"][0] == {
        "key": "api/c0",
        "action": "blocked",
        "reason": "sink-error",
        "client_id": "live0",
        "retire": [],
        "detail": DENIED,
        "after": None,
    }
    assert document["blocked"][3] == {"key": "api/c3", "error": "sink 'files': not a directory"}
    assert document["changes"] is True  # the create of api/c4


def test_apply_counts_blocked_credentials_apart_and_fails_the_run() -> None:
    the_plan = blocked_plan()
    summary = summarize(the_plan, [])
    assert (summary.blocked, summary.failed, summary.complete) == (4, 0, False)
    assert "0 unchanged, 0 failed, 4 could not be planned." in summary.line()
    assert RunResult("r", NOW, NOW, the_plan, ()).failed
    report = run_report("r", NOW, NOW, the_plan, [])
    entry = report["actions"][0]
    assert (entry["status"], entry["error"]) == ("failed", DENIED)
    assert report["summary"]["blocked"] == 4


# --- checks before planning -----------------------------------------------------------------------


def file_sink(cwd: Path, path: str) -> FileSink:
    return FileSink("files", FileSinkOptions(path=path), SinkContext(cwd=cwd))


def env_sink(cwd: Path, path: str) -> EnvSink:
    return EnvSink("dotenv", EnvSinkOptions(path=path), SinkContext(cwd=cwd))


@pytest.mark.anyio
async def test_a_file_sink_directory_that_exists_or_can_be_made_passes(tmp_path: Path) -> None:
    (tmp_path / "there").mkdir()
    assert await file_sink(tmp_path, "there").check() is None
    assert await file_sink(tmp_path, "not/yet/made").check() is None
    assert not (tmp_path / "not").exists()  # a check writes nothing


@pytest.mark.anyio
async def test_a_file_sink_under_a_regular_file_fails_its_check(tmp_path: Path) -> None:
    (tmp_path / "blocked").write_text("a file where a directory should be")
    problem = await file_sink(tmp_path, "blocked").check()
    assert str(problem) == "sink 'files': cannot write records in blocked: not a directory"
    below = await file_sink(tmp_path, "blocked/secrets").check()
    assert below is not None
    assert str(below).endswith(f"{tmp_path / 'blocked'}: not a directory")


@pytest.mark.anyio
@pytest.mark.skipif(
    os.geteuid() == 0,
    reason="file modes do not bind root; as root tests/e2e/test_e2e_truth.py checks the same "
    "refusal on a read-only bind mount and under a regular file",
)
async def test_a_read_only_file_sink_directory_fails_its_check(tmp_path: Path) -> None:
    (tmp_path / "ro").mkdir(mode=0o500)
    problem = await file_sink(tmp_path, "ro").check()
    assert "permission denied" in str(problem)


@pytest.mark.anyio
async def test_an_env_sink_needs_a_writable_directory_and_a_regular_file(tmp_path: Path) -> None:
    assert await env_sink(tmp_path, "out/app.env").check() is None
    assert await env_sink(tmp_path, "-").check() is None
    (tmp_path / "dir.env").mkdir()
    problem = await env_sink(tmp_path, "dir.env").check()
    assert str(problem) == (
        "sink 'dotenv': cannot write dir.env: not a regular file (refusing to replace it)"
    )
    (tmp_path / "flat").write_text("")
    under = await env_sink(tmp_path, "flat/app.env").check()
    assert (
        str(under) == f"sink 'dotenv': cannot write flat/app.env: directory {tmp_path / 'flat'}: "
        "not a directory"
    )
    (tmp_path / "link.env").symlink_to(tmp_path / "elsewhere.env")
    assert "symbolic link" in str(await env_sink(tmp_path, "link.env").check())


def vault_sink(state: VaultState, token: str) -> VaultSink:
    context = SinkContext(
        cwd=Path.cwd(),
        environ={"VAULT_TOKEN": token},
        transport=httpx.ASGITransport(app=create_vault_app(state)),
        max_attempts=2,
    )
    options = VaultSinkOptions(address="https://vault.example:8200", prefix="streamkap")
    return VaultSink("vault", options, context, sleep=no_sleep)


@pytest.mark.anyio
@pytest.mark.parametrize(("token", "accepted"), [(VAULT_ROOT_TOKEN, True), ("s.wrong", False)])
async def test_a_vault_sink_check_is_one_token_lookup(token: str, accepted: bool) -> None:
    state = VaultState()
    sink = vault_sink(state, token)
    try:
        problem = await sink.check()
    finally:
        await sink.aclose()
    assert (problem is None) is accepted
    assert [(c.method, c.path) for c in state.calls()] == [("GET", f"/v1/{LOOKUP_SELF}")]
    if not accepted:
        assert str(problem).startswith(
            "sink 'vault': Vault at https://vault.example:8200 refused the token (HTTP 403"
        )
        assert "s.wrong" not in str(problem)


@pytest.mark.anyio
async def test_checks_run_once_per_sink_and_skip_reads_of_blocked_credentials() -> None:
    good, bad = MemorySink("good"), MemorySink("bad", fail_check="token refused")
    failed = await check_sinks({"good": good, "bad": bad})
    assert {name: str(error) for name, error in failed.items()} == {
        "bad": "sink 'bad': token refused"
    }
    assert (good.checks, bad.checks) == (1, 1)


@pytest.mark.anyio
async def test_a_check_that_never_answers_fails_at_the_apis_deadline() -> None:
    class Hanging(MemorySink):
        async def check(self) -> SinkError | None:
            await anyio.sleep_forever()
            return None

    sinks: dict[str, Any] = {"hangs": Hanging("hangs"), "good": MemorySink("good")}
    failed = await check_sinks(sinks, deadline=0.05)
    assert {name: str(error) for name, error in failed.items()} == {
        "hangs": "sink 'hangs': check: no answer within 0.05 s (PROVISIONER_TIMEOUT)"
    }


@pytest.mark.anyio
async def test_a_sink_plugin_without_check_is_taken_as_writable() -> None:
    class Old(MemorySink):
        check = None  # type: ignore[assignment]

    sinks: dict[str, Any] = {"old": Old("old")}
    assert await check_sinks(sinks) == {}


@pytest.mark.anyio
async def test_read_holdings_reports_an_unreadable_sink_per_key() -> None:
    wanted = [desired("a", sinks=("bad",)), desired("b", sinks=("good",))]
    sinks: dict[str, Any] = {"good": MemorySink("good"), "bad": MemorySink("bad", fail_reads=True)}
    holdings, unreadable, _ = await read_holdings(wanted, sinks, 4)
    assert set(unreadable) == {"api/a"}
    assert holdings["api/b"] == {"good": None}


# --- what a create makes --------------------------------------------------------------------------


def test_creates_and_replaces_say_roles_by_name_sinks_and_rotation_date() -> None:
    fresh = dataclasses.replace(
        desired("fresh", sinks=("vault", "files"), rotate_after=timedelta(days=90)),
        role_names=("Admin",),
    )
    drifted = desired("ingest", permissions=("p1",), rotate_after=timedelta(days=30))
    found = [remote("c1", age=timedelta(days=2))]
    the_plan = plan([fresh, drifted], found, {"api/ingest": {"local": "c1"}}, now=NOW)
    lines = render_plan(the_plan).splitlines()
    assert lines[:2] == [
        "To create:",
        "  + api/fresh: missing",
    ]
    assert lines[2] == "      roles Admin; sinks vault, files; rotates 2027-01-30T00:00:00Z"
    assert lines[5] == "      roles r1; permissions p1; sinks local; rotates 2026-12-01T00:00:00Z"
    after = plan_json(the_plan)["actions"][0]["after"]
    assert after == {
        "roles": ["Admin"],
        "permissions": [],
        "sinks": ["vault", "files"],
        "rotates_at": "2027-01-30T00:00:00Z",
    }


def test_an_update_keeps_the_credential_and_its_rotation_date() -> None:
    wanted = desired(roles=("r2",), rotate_after=timedelta(days=30))
    found = [remote("c1", age=timedelta(days=10))]
    the_plan = plan([wanted], found, {"api/ingest": {"local": "c1"}}, now=NOW)
    (update,) = the_plan.actions
    assert update.kind is Kind.UPDATE
    after = plan_json(the_plan)["actions"][0]["after"]
    assert after == {
        "roles": ["r2"],
        "permissions": [],
        "sinks": ["local"],  # issue 22: the record it holds is refreshed
        "rotates_at": "2026-11-21T00:00:00Z",
    }
    shown = render_plan(the_plan).splitlines()
    assert "      roles r2; sinks local; rotates 2026-11-21T00:00:00Z" in shown


def test_a_restore_names_the_sinks_it_fills() -> None:
    wanted = desired(sinks=("files", "dotenv"))
    the_plan = plan(
        [wanted], [remote("c1")], {"api/ingest": {"files": None, "dotenv": "c1"}}, now=NOW
    )
    (restore,) = the_plan.actions
    assert restore.kind is Kind.RESTORE
    assert plan_json(the_plan)["actions"][0]["after"]["sinks"] == ["files"]


def test_resolved_roles_keep_their_names() -> None:
    roles = [Role("role-1", "ReadOnly", "Read Only"), Role("role-2", "Admin", "Admin")]
    wanted = dataclasses.replace(desired(roles=("read_only", "admin", "role-1")), role_ids=())

    class Manifests:
        credentials = (wanted,)

        def where(self, origin: Any) -> str:
            return "m.yaml:1"

    (resolved,) = resolve_roles(Manifests(), roles)  # type: ignore[arg-type]
    assert resolved.role_ids == ("role-1", "role-2")
    assert resolved.role_names == ("Read Only", "Admin")


# --- colour -------------------------------------------------------------------------------------


def coloured_plan() -> Plan:
    wanted = [desired("fresh"), desired("ingest", permissions=("p1",))]
    found = [remote("c1"), remote("c2", age=timedelta(hours=1))]
    return plan(wanted, found, {"api/ingest": {"local": "c1"}, "api/fresh": {}}, now=NOW)


def test_with_colour_creates_are_green_replaces_yellow_deletes_red() -> None:
    lines = render_plan(coloured_plan(), color=True).splitlines()
    assert "\x1b[32m  + api/fresh: missing\x1b[0m" in lines
    assert any(line.startswith("\x1b[33m  ~ api/ingest (c1)") for line in lines)
    assert "\x1b[31m  - api/ingest (c2): duplicate (the sinks hold c1)\x1b[0m" in lines
    assert not any(ESC in line for line in lines if line.startswith(("To ", "Plan:", "      ")))


def test_without_colour_there_is_no_escape_code() -> None:
    assert ESC not in render_plan(coloured_plan())
    assert ESC not in render_plan(coloured_plan(), color=False)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("stream", "environ", "expected"),
    [
        (Terminal(), {}, True),
        (Terminal(), {"NO_COLOR": ""}, True),  # empty: as if unset (no-color.org)
        (Terminal(), {"NO_COLOR": "1"}, False),
        (io.StringIO(), {}, False),  # piped
    ],
)
def test_colour_only_on_a_terminal_without_no_color(
    stream: io.StringIO, environ: dict[str, str], expected: bool
) -> None:
    assert wants_color(stream, environ) is expected
