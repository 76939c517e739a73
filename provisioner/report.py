"""What a plan or a run amounts to, for people (stderr) and machines (JSON). Never a secret."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from provisioner.engine import Outcome, Status
from provisioner.plan import Action, Kind, Plan

PLAN_SCHEMA_VERSION = 1
_HEADINGS = {
    Kind.CREATE: "to create",
    Kind.REPLACE: "to replace",
    Kind.DELETE: "to delete",
    Kind.ORPHAN: "orphans (kept; --prune deletes them)",
}


def render_plan(plan: Plan) -> str:
    """One line per change, grouped by action, then the summary line."""
    lines: list[str] = []
    for kind, heading in _HEADINGS.items():
        group = [a for a in plan.actions if a.kind is kind]
        if group:
            lines.append(f"{heading.capitalize()}:")
            lines.extend(f"  {_describe(action)}" for action in group)
    lines.append(plan_summary_line(plan))
    return "\n".join(lines)


def plan_summary_line(plan: Plan) -> str:
    counts = plan.counts
    line = (
        f"Plan: {counts.get(Kind.CREATE, 0)} to create, {counts.get(Kind.REPLACE, 0)} to replace, "
        f"{counts.get(Kind.DELETE, 0)} to delete, {counts.get(Kind.NOOP, 0)} unchanged."
    )
    orphans = counts.get(Kind.ORPHAN, 0)
    return line + (f" {orphans} orphaned (use --prune to delete)." if orphans else "")


def plan_json(plan: Plan) -> dict[str, Any]:
    """The `plan --json` document (schema version 1, documented in the README)."""
    counts = plan.counts
    return {
        "version": PLAN_SCHEMA_VERSION,
        "summary": {
            "create": counts.get(Kind.CREATE, 0),
            "replace": counts.get(Kind.REPLACE, 0),
            "delete": counts.get(Kind.DELETE, 0),
            "unchanged": counts.get(Kind.NOOP, 0),
            "orphan": counts.get(Kind.ORPHAN, 0),
        },
        "changes": plan.has_changes,
        "actions": [_action_json(action) for action in plan.actions],
    }


@dataclass(frozen=True)
class Summary:
    created: int = 0
    replaced: int = 0
    deleted: int = 0
    unchanged: int = 0
    failed: int = 0

    def line(self) -> str:
        return (
            f"Applied: {self.created} created, {self.replaced} replaced, {self.deleted} deleted, "
            f"{self.unchanged} unchanged, {self.failed} failed."
        )


def summarize(plan: Plan, outcomes: Sequence[Outcome]) -> Summary:
    done = Counter(o.action.kind for o in outcomes if o.status is Status.OK)
    return Summary(
        created=done[Kind.CREATE],
        replaced=done[Kind.REPLACE],
        deleted=done[Kind.DELETE],
        unchanged=plan.counts.get(Kind.NOOP, 0),
        failed=sum(1 for o in outcomes if o.status is not Status.OK),
    )


def run_report(
    run_id: str,
    started_at: datetime,
    finished_at: datetime,
    plan: Plan,
    outcomes: Sequence[Outcome],
) -> dict[str, Any]:
    """The `--report FILE` document."""
    by_action = {id(o.action): o for o in outcomes}
    actions = [_report_entry(action, by_action.get(id(action))) for action in plan.actions]
    return {
        "run_id": run_id,
        "started_at": started_at.isoformat(),
        "finished_at": finished_at.isoformat(),
        "summary": summarize(plan, outcomes).__dict__,
        "actions": actions,
    }


def _report_entry(action: Action, outcome: Outcome | None) -> dict[str, Any]:
    """An action with what became of it; `client_id` is the new credential when one was made."""
    entry = _action_json(action)
    if outcome is None:
        # A write with no outcome never started (e.g. another action of its key was blocked).
        entry["status"] = Status.SKIPPED.value if action.writes else Status.OK.value
        entry["error"] = "not attempted" if action.writes else None
        return entry
    entry["status"] = outcome.status.value
    if outcome.client_id:
        entry["client_id"] = outcome.client_id
    entry["error"] = outcome.error
    return entry


def _action_json(action: Action) -> dict[str, Any]:
    return {
        "key": action.key,
        "action": action.kind.value,
        "reason": action.reason.value,
        "client_id": action.client_id,
    }


def _describe(action: Action) -> str:
    target = f" ({action.client_id})" if action.client_id else ""
    retire = f", then delete {', '.join(action.retire)}" if action.retire else ""
    return f"{action.key}{target}: {action.reason.value}{retire}"
