"""What a plan or a run amounts to, for people (stderr) and machines (JSON). Never a secret."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from provisioner.logs import redact_value
from provisioner.manifest.durations import format_duration
from provisioner.reconcile.model import Action, Kind, Outcome, Plan, Reason, Status
from provisioner.reconcile.plan import grace_of

PLAN_SCHEMA_VERSION = 1
_GROUPS = {
    Kind.CREATE: ("To create:", "+"),
    Kind.UPDATE: ("To update in place:", "^"),
    Kind.REPLACE: ("To replace:", "~"),
    Kind.DELETE: ("To delete:", "-"),
    Kind.NOOP: ("Left in place:", "="),  # orphans without --prune, superseded ones in grace
}


def render_plan(plan: Plan) -> str:
    """One line per change, grouped by action, then the summary line."""
    return "\n".join([*change_lines(plan), plan_summary_line(plan)])


def change_lines(plan: Plan) -> list[str]:
    """The plan's changes, and what it leaves in place on purpose (orphans, grace), by group."""
    lines: list[str] = []
    for kind, (heading, sign) in _GROUPS.items():
        group = [a for a in plan.actions if a.kind is kind and a.reason is not Reason.UP_TO_DATE]
        if group:
            lines.append(heading)
            lines.extend(f"  {sign} {describe(action)}" for action in group)
    return lines


def describe(action: Action) -> str:
    """`key (client_id): reason (detail)[, then ...]` for one action."""
    target = f" ({action.client_id})" if action.client_id else ""
    detail = f" ({action.detail})" if action.detail else ""
    return f"{action.key}{target}: {action.reason.value}{detail}{_afterwards(action)}"


def _afterwards(action: Action) -> str:
    """What becomes of the credential a replace supersedes."""
    if action.kind is not Kind.REPLACE or action.client_id is None:
        return ""
    others = [cid for cid in action.retire if cid != action.client_id]
    if action.client_id in action.retire:
        return "; then delete it" + "".join(f" and {cid}" for cid in others)
    grace = format_duration(grace_of(action.desired)) if action.desired else "?"
    retired = f"; then delete {' and '.join(others)}" if others else ""
    return f"; it stays live for {grace} (grace){retired}"


def plan_summary_line(plan: Plan) -> str:
    """`Plan: 3 to create, 2 to replace, 1 to delete, 40 unchanged.` plus what is kept."""
    unchanged = plan.count(Kind.NOOP, Reason.UP_TO_DATE)
    updated = plan.count(Kind.UPDATE)
    update = f" {updated} to update," if updated else ""
    line = (
        f"Plan: {plan.count(Kind.CREATE)} to create,{update} {plan.count(Kind.REPLACE)} to "
        f"replace, {plan.count(Kind.DELETE)} to delete, {unchanged} unchanged."
    )
    return line + _kept(plan)


def _kept(plan: Plan) -> str:
    return _kept_note(plan.count(Kind.NOOP, Reason.ORPHAN), plan.count(Kind.NOOP, Reason.IN_GRACE))


def _kept_note(orphaned: int, in_grace: int) -> str:
    """What stays live on purpose, after a summary line; empty when nothing does."""
    notes = []
    if orphaned:
        notes.append(f"{orphaned} orphan{'s' * (orphaned > 1)} kept (--prune deletes orphans)")
    if in_grace:
        notes.append(f"{in_grace} superseded kept for grace")
    return f" {', '.join(notes)}." if notes else ""


def plan_json(plan: Plan, blocked: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The `plan --json` document: PLAN_JSON_SCHEMA, documented in docs/reconciliation.md."""
    return {
        "version": PLAN_SCHEMA_VERSION,
        "changes": plan.has_changes,
        "summary": {
            "create": plan.count(Kind.CREATE),
            "update": plan.count(Kind.UPDATE),
            "replace": plan.count(Kind.REPLACE),
            "delete": plan.count(Kind.DELETE),
            "unchanged": plan.count(Kind.NOOP, Reason.UP_TO_DATE),
            "orphan": plan.count(Kind.NOOP, Reason.ORPHAN),
            "in_grace": plan.count(Kind.NOOP, Reason.IN_GRACE),
        },
        "actions": [action_json(action) for action in plan.actions],
        "blocked": [{"key": key, "error": error} for key, error in (blocked or {}).items()],
    }


def action_json(action: Action) -> dict[str, Any]:
    """One action as `plan --json` and `--report` show it."""
    return {
        "key": action.key,
        "action": action.kind.value,
        "reason": action.reason.value,
        "client_id": action.client_id,
        "retire": list(action.retire),
        "detail": action.detail or None,
    }


_COUNT = {"type": "integer", "minimum": 0}
_SUMMARY_FIELDS = ("create", "update", "replace", "delete", "unchanged", "orphan", "in_grace")
_ID = {"type": ["string", "null"]}
PLAN_JSON_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "provisioner plan --json, version 1",
    "type": "object",
    "required": ["version", "changes", "summary", "actions", "blocked"],
    "additionalProperties": False,
    "properties": {
        "version": {"const": PLAN_SCHEMA_VERSION},
        "changes": {"type": "boolean", "description": "true when apply would write anything"},
        "summary": {
            "type": "object",
            "required": list(_SUMMARY_FIELDS),
            "additionalProperties": False,
            "properties": dict.fromkeys(_SUMMARY_FIELDS, _COUNT),
        },
        "actions": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["key", "action", "reason", "client_id", "retire", "detail"],
                "additionalProperties": False,
                "properties": {
                    "key": {"type": "string", "pattern": "^[^/]+/[^/]+$"},
                    "action": {"enum": [kind.value for kind in Kind]},
                    "reason": {"enum": [reason.value for reason in Reason]},
                    "client_id": _ID,
                    "retire": {"type": "array", "items": {"type": "string"}},
                    "detail": {"type": ["string", "null"]},
                },
            },
        },
        "blocked": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["key", "error"],
                "additionalProperties": False,
                "properties": {"key": {"type": "string"}, "error": {"type": "string"}},
            },
        },
    },
}


@dataclass(frozen=True)
class Summary:
    """What a run did, counted."""

    created: int = 0
    updated: int = 0
    replaced: int = 0
    deleted: int = 0
    unchanged: int = 0
    failed: int = 0
    orphaned: int = 0
    in_grace: int = 0
    skipped: int = 0  # never started: the run was stopped (signal, circuit breaker)

    @property
    def complete(self) -> bool:
        return not (self.failed or self.skipped)

    def line(self) -> str:
        """The summary line, then what was kept on purpose (orphans, grace)."""
        update = f" {self.updated} updated," if self.updated else ""
        line = (
            f"Applied: {self.created} created,{update} {self.replaced} replaced, "
            f"{self.deleted} deleted, {self.unchanged} unchanged, {self.failed} failed."
        )
        if self.skipped:
            line += f" {self.skipped} not started."
        return line + _kept_note(self.orphaned, self.in_grace)


def summarize(plan: Plan, outcomes: Sequence[Outcome]) -> Summary:
    done = Counter(_done(o) for o in outcomes if o.status is Status.OK)
    failed = {id(o.action) for o in outcomes if o.status is Status.FAILED}
    skipped = {id(o.action) for o in outcomes if o.status is Status.SKIPPED}
    not_ok = failed | skipped
    unchanged = [a for a in plan.actions if a.reason is Reason.UP_TO_DATE and id(a) not in not_ok]
    return Summary(
        created=done[Kind.CREATE],
        updated=done[Kind.UPDATE],
        replaced=done[Kind.REPLACE],
        deleted=done[Kind.DELETE],
        unchanged=len(unchanged),
        failed=len(failed),
        skipped=len(skipped),
        orphaned=plan.count(Kind.NOOP, Reason.ORPHAN),
        in_grace=plan.count(Kind.NOOP, Reason.IN_GRACE),
    )


def _done(outcome: Outcome) -> Kind:
    """What an action did: an update the API could not make in place was a replace."""
    action = outcome.action
    if action.kind is Kind.UPDATE and outcome.client_id != action.client_id:
        return Kind.REPLACE
    return action.kind


def run_report(
    run_id: str,
    started_at: datetime,
    finished_at: datetime,
    plan: Plan,
    outcomes: Sequence[Outcome],
) -> dict[str, Any]:
    """The `--report FILE` document; any secret an error echoed is redacted (provisioner.logs)."""
    by_action = {id(o.action): o for o in outcomes}
    actions = [_report_entry(action, by_action.get(id(action))) for action in plan.actions]
    report: dict[str, Any] = redact_value(
        {
            "run_id": run_id,
            "started_at": started_at.isoformat(),
            "finished_at": finished_at.isoformat(),
            "summary": asdict(summarize(plan, outcomes)),
            "actions": actions,
        }
    )
    return report


def _report_entry(action: Action, outcome: Outcome | None) -> dict[str, Any]:
    """An action with what became of it; `client_id` is the credential it made, if any."""
    entry = action_json(action)
    if outcome is None:
        # A write with no outcome never started (e.g. another action of its key was blocked).
        entry["status"] = Status.SKIPPED.value if action.writes else Status.OK.value
        entry["error"] = "not attempted" if action.writes else None
        return entry
    entry["status"] = outcome.status.value
    if outcome.client_id and _done(outcome) in {Kind.CREATE, Kind.REPLACE}:
        entry["replaced_client_id"] = action.client_id  # the old one, for a replace
        entry["client_id"] = outcome.client_id
    entry["error"] = outcome.error
    return entry
