"""Plan rendering for people and the `plan --json` document, from plans built by the planner."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import jsonschema

from provisioner.cli.render import PLAN_JSON_SCHEMA, plan_json, render_plan, summarize
from provisioner.model import Holdings, Outcome, Plan, Status
from provisioner.reconcile.plan import plan
from tests.unit.test_plan import NOW, desired, remote

HELD: Holdings = {"api/ingest": {"local": "c1"}, "api/fresh": {"local": None}}


def mixed_plan(*, prune: bool = False) -> Plan:
    """One of each: a create, a replace, a duplicate delete, an orphan, an unchanged one."""
    wanted = [desired("fresh"), desired("ingest", permissions=("p1",)), desired("same")]
    found = [
        remote("c1"),
        remote("c2", age=timedelta(hours=1)),
        remote("c3", key="api/same"),
        remote("c9", key="gone/away"),
        remote("hand", key=None),
    ]
    return plan(wanted, found, {**HELD, "api/same": {"local": "c3"}}, now=NOW, prune=prune)


def test_plan_is_rendered_one_line_per_change_grouped_by_action() -> None:
    assert render_plan(mixed_plan()).splitlines() == [
        "To create:",
        "  + api/fresh: missing",
        "      roles r1; sinks local",
        "To replace:",
        "  ~ api/ingest (c1): drift:permissions (permissions none -> p1); then delete it",
        "      roles r1; permissions p1; sinks local",
        "To delete:",
        "  - api/ingest (c2): duplicate (the sinks hold c1)",
        "Left in place:",
        "  = gone/away (c9): orphan (in no manifest; --prune deletes it)",
        "Plan: 1 to create, 1 to replace, 1 to delete, 1 unchanged."
        " 1 orphan kept (--prune deletes orphans).",
    ]


def test_a_replace_under_grace_says_how_long_the_old_one_stays() -> None:
    wanted = desired(permissions=("p1",), grace=timedelta(hours=2))
    the_plan = plan([wanted], [remote("c1")], {"api/ingest": {"local": "c1"}}, now=NOW)
    assert (
        "~ api/ingest (c1): drift:permissions (permissions none -> p1); it stays live for 2h"
        " (grace)" in render_plan(the_plan)
    )


def test_a_lost_secret_under_grace_says_which_older_one_goes() -> None:
    wanted = desired(grace=timedelta(hours=2))
    found = [remote("c0", age=timedelta(hours=3)), remote("c1", age=timedelta(hours=1))]
    the_plan = plan([wanted], found, {"api/ingest": {"local": None}}, now=NOW)
    expected = (
        "~ api/ingest (c1): lost-secret (local holds nothing); it stays live for 2h (grace);"
        " then delete c0"
    )
    assert expected in render_plan(the_plan)


def test_a_replace_waiting_for_a_grace_is_left_in_place_and_says_why() -> None:
    wanted = desired(roles=("r2",), grace=timedelta(hours=2))
    found = [remote("c0", age=timedelta(hours=3)), remote("c1", age=timedelta(hours=1))]
    shown = render_plan(plan([wanted], found, {"api/ingest": {"local": "c1"}}, now=NOW))
    expected = (
        "= api/ingest (c1): drift:roles (roles r1 -> r2; waits for the grace of c0 to end:"
        " at most two live per key)"
    )
    assert expected in shown
    assert "To replace:" not in shown


def test_an_unchanged_plan_is_one_summary_line() -> None:
    the_plan = plan([desired()], [remote("c1")], HELD, now=NOW)
    assert render_plan(the_plan) == "Plan: 0 to create, 0 to replace, 0 to delete, 1 unchanged."


def test_plan_json_follows_its_schema() -> None:
    for prune in (False, True):
        document = plan_json(mixed_plan(prune=prune))
        jsonschema.validate(document, PLAN_JSON_SCHEMA)


def test_plan_json_counts_and_lists_every_action() -> None:
    document = plan_json(mixed_plan())
    assert document["changes"] is True
    assert document["summary"] == {
        "create": 1,
        "update": 0,
        "replace": 1,
        "restore": 0,
        "delete": 1,
        "unchanged": 1,
        "orphan": 1,
        "in_grace": 0,
        "deferred": 0,
        "blocked": 0,
        "other_owner": 0,
    }
    assert document["actions"][1] == {
        "key": "api/ingest",
        "action": "replace",
        "reason": "drift:permissions",
        "client_id": "c1",
        "retire": ["c1"],
        "detail": "permissions none -> p1",
        "after": {"roles": ["r1"], "permissions": ["p1"], "sinks": ["local"], "rotates_at": None},
    }
    assert "hand" not in str(document)  # unmanaged: not even mentioned


def test_apply_summary_counts_what_was_done() -> None:
    the_plan = mixed_plan()
    create, replace, delete = (a for a in the_plan.actions if a.writes)
    outcomes = [
        Outcome(create, Status.OK, client_id="n1"),
        Outcome(replace, Status.FAILED, error="boom"),
        Outcome(delete, Status.OK, client_id="c2"),
    ]
    assert summarize(the_plan, outcomes).line() == (
        "Applied: 1 created, 0 replaced, 1 deleted, 1 unchanged, 1 failed."
        " 1 orphan kept (--prune deletes orphans)."
    )


def test_the_documented_json_schema_is_the_one_in_the_code() -> None:
    """docs/reconciliation.md: the schema copy is exact, and the example follows it."""
    doc = (Path(__file__).parents[2] / "docs" / "reconciliation.md").read_text()
    schema = re.search(r"<!-- plan-json-schema -->\n```json\n(.*?)\n```", doc, re.DOTALL)
    assert schema is not None
    assert json.loads(schema[1]) == PLAN_JSON_SCHEMA
    (example,) = (b for b in re.findall(r"```json\n(.*?)\n```", doc, re.DOTALL) if b != schema[1])
    jsonschema.validate(json.loads(example), PLAN_JSON_SCHEMA)
