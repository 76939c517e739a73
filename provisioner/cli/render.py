"""What a plan or a run amounts to, for people (stderr) and machines (JSON). Never a secret."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from provisioner.logs import redact_value
from provisioner.manifest.durations import format_duration
from provisioner.model import Action, Kind, Outcome, Plan, Reason, Status
from provisioner.reconcile.plan import grace_of

# 2: restore, forced, deferred, blocked (count, list and action); other owners; `after`
PLAN_SCHEMA_VERSION = 2
_GROUPS = {
    Kind.CREATE: ("To create:", "+"),
    Kind.UPDATE: ("To update in place:", "^"),
    Kind.REPLACE: ("To replace:", "~"),
    Kind.RESTORE: ("To restore from a sibling sink:", ">"),
    Kind.DELETE: ("To delete:", "-"),
    Kind.NOOP: ("Left in place:", "="),  # orphans without --prune, superseded ones in grace
}


# On a terminal: green what is made, yellow what is changed, red what is deleted.
_COLORS = {
    Kind.CREATE: "\x1b[32m",
    Kind.UPDATE: "\x1b[33m",
    Kind.REPLACE: "\x1b[33m",
    Kind.RESTORE: "\x1b[33m",
    Kind.DELETE: "\x1b[31m",
}
_RESET = "\x1b[0m"
_SHOWN_KEYS = 3  # keys named in a line about many credentials


def render_plan(plan: Plan, *, color: bool = False) -> str:
    """One line per change, grouped by action, then the summary line."""
    return "\n".join([*change_lines(plan, color=color), plan_summary_line(plan)])


def change_lines(plan: Plan, *, color: bool = False) -> list[str]:
    """The plan's changes, and what it leaves in place on purpose (orphans, grace), by group;
    under a create, replace, update or restore, what it makes; then, once per cause, what could
    not be planned."""
    lines: list[str] = []
    for kind, (heading, sign) in _GROUPS.items():
        group = [a for a in plan.actions if a.kind is kind and a.reason is not Reason.UP_TO_DATE]
        if group:
            lines.append(heading)
            for action in group:
                lines.append(_painted(f"  {sign} {describe(action)}", kind, color))
                made = makes(action)
                if made:
                    lines.append(f"      {made}")
    return lines + blocked_lines(plan)


def _painted(line: str, kind: Kind, color: bool) -> str:
    code = _COLORS.get(kind) if color else None
    return f"{code}{line}{_RESET}" if code else line


def makes(action: Action) -> str:
    """What a create, replace, update or restore leaves: `roles A, B; sinks x, y; rotates T`."""
    after = action_after(action)
    if after is None:
        return ""
    parts = []
    if after["roles"]:
        parts.append(f"roles {', '.join(after['roles'])}")
    if after["permissions"]:
        parts.append(f"permissions {', '.join(after['permissions'])}")
    if after["sinks"]:
        parts.append(f"sinks {', '.join(after['sinks'])}")
    if after["rotates_at"]:
        parts.append(f"rotates {after['rotates_at']}")
    return "; ".join(parts)


def action_after(action: Action) -> dict[str, Any] | None:
    """The credential a create, replace, update or restore leaves, for `plan --json`'s `after`:
    roles by name, permission ids, the sinks written, and when it is due for rotation."""
    wanted = action.desired
    if wanted is None or action.kind not in _MAKES:
        return None
    if action.kind in (Kind.RESTORE, Kind.UPDATE):  # the sinks it fills, or refreshes
        sinks: Sequence[str] = action.targets
    else:
        sinks = wanted.sinks
    return {
        "roles": list(wanted.role_names or wanted.roles),
        "permissions": list(wanted.permission_ids),
        "sinks": list(sinks),
        "rotates_at": _when(action.rotates_at) if action.rotates_at else None,
    }


_MAKES = (Kind.CREATE, Kind.REPLACE, Kind.UPDATE, Kind.RESTORE)


def _when(moment: datetime) -> str:
    aware = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
    return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def blocked_lines(plan: Plan) -> list[str]:
    """What could not be planned, one line per cause (see `blocked_line`)."""
    return [blocked_line(cause, keys) for cause, keys in blocked_causes(plan).items()]


def blocked_causes(plan: Plan) -> dict[str, list[str]]:
    """The keys of the blocked actions, by cause, in plan order."""
    causes: dict[str, list[str]] = {}
    for action in plan.actions:
        if action.kind is Kind.BLOCKED:
            causes.setdefault(action.detail, []).append(action.key)
    return causes


def blocked_line(cause: str, keys: Sequence[str]) -> str:
    """`cannot plan 32 credentials (a/b, a/c, a/d and 29 more): sink 'vault': ...`; for one
    credential `cannot plan KEY: cause`."""
    if len(keys) == 1:
        return f"cannot plan {keys[0]}: {cause}"
    named = ", ".join(keys[:_SHOWN_KEYS])
    more = f" and {len(keys) - _SHOWN_KEYS} more" if len(keys) > _SHOWN_KEYS else ""
    return f"cannot plan {len(keys)} credentials ({named}{more}): {cause}"


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
    updated, restore = plan.count(Kind.UPDATE), plan.count(Kind.RESTORE)
    line = (
        f"Plan: {plan.count(Kind.CREATE)} to create, "
        + (f"{updated} to update, " if updated else "")
        + f"{plan.count(Kind.REPLACE)} to replace, "
        + (f"{restore} to restore, " if restore else "")
        + f"{plan.count(Kind.DELETE)} to delete, {unchanged} unchanged"
        + blocked_count(plan.count(Kind.BLOCKED))
        + "."
    )
    return line + _kept(plan)


def counted(count: int, plural: str) -> str:
    """`1 file`, `2 files`: for the nouns whose plural only adds an s (credentials, services)."""
    return f"{count} {plural if count != 1 else plural.removesuffix('s')}"


def blocked_count(blocked: int) -> str:
    """`, 3 could not be planned` for a summary line; empty when every credential was."""
    return f", {blocked} could not be planned" if blocked else ""


def _kept(plan: Plan) -> str:
    orphaned = plan.count(Kind.NOOP, Reason.ORPHAN)
    in_use = plan.count(Kind.NOOP, Reason.IN_USE)
    kept = _kept_note(orphaned, plan.count(Kind.NOOP, Reason.IN_GRACE), in_use)
    return kept + deferred_note(plan.count(Kind.NOOP, Reason.DEFERRED)) + other_owners_note(plan)


def deferred_note(deferred: int) -> str:
    """Changes the change budget left for later runs: rotations and deletes of superseded
    credentials due, and updates the API could only make as replaces."""
    if not deferred:
        return ""
    return f" {deferred} change{'s' * (deferred > 1)} deferred to later runs (change budget)."


def _kept_note(orphaned: int, in_grace: int, in_use: int = 0) -> str:
    """What stays live on purpose, after a summary line; empty when nothing does."""
    notes = []
    if orphaned:
        notes.append(f"{orphaned} orphan{'s' * (orphaned > 1)} kept (--prune deletes orphans)")
    if in_grace:
        notes.append(f"{in_grace} superseded kept for grace")
    if in_use:
        notes.append(f"{in_use} superseded kept past grace while still in use (grace_max)")
    return f" {', '.join(notes)}." if notes else ""


def other_owners_note(plan: Plan) -> str:
    """Other owners' marked credentials, once: never planned, never touched."""
    if not plan.other_owners:
        return ""
    total = sum(count for _, count in plan.other_owners)
    owners = ", ".join(f"{owner} {count}" for owner, count in plan.other_owners)
    return f" {total} of other owners left alone ({owners})."


def plan_json(plan: Plan) -> dict[str, Any]:
    """The `plan --json` document: PLAN_JSON_SCHEMA, documented in docs/reconciliation.md."""
    blocked = [a for a in plan.actions if a.kind is Kind.BLOCKED]
    return {
        "version": PLAN_SCHEMA_VERSION,
        "changes": plan.has_changes,
        "summary": {
            "create": plan.count(Kind.CREATE),
            "update": plan.count(Kind.UPDATE),
            "replace": plan.count(Kind.REPLACE),
            "restore": plan.count(Kind.RESTORE),
            "delete": plan.count(Kind.DELETE),
            "unchanged": plan.count(Kind.NOOP, Reason.UP_TO_DATE),
            "orphan": plan.count(Kind.NOOP, Reason.ORPHAN),
            "in_grace": plan.count(Kind.NOOP, Reason.IN_GRACE),
            "deferred": plan.count(Kind.NOOP, Reason.DEFERRED),
            "blocked": len(blocked),
            "other_owner": sum(count for _, count in plan.other_owners),
        },
        "actions": [action_json(action) for action in plan.actions],
        "blocked": [{"key": action.key, "error": action.detail} for action in blocked],
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
        "after": action_after(action),
    }


_COUNT = {"type": "integer", "minimum": 0}
_SUMMARY_FIELDS = (
    "create",
    "update",
    "replace",
    "restore",
    "delete",
    "unchanged",
    "orphan",
    "in_grace",
    "deferred",
    "blocked",
    "other_owner",
)
_ID = {"type": ["string", "null"]}
_NAMES = {"type": "array", "items": {"type": "string"}}
_AFTER = {
    "description": "create, replace, update, restore: the credential it leaves; else null",
    "oneOf": [
        {"type": "null"},
        {
            "type": "object",
            "required": ["roles", "permissions", "sinks", "rotates_at"],
            "additionalProperties": False,
            "properties": {
                "roles": {**_NAMES, "description": "role names, as the API lists them"},
                "permissions": {**_NAMES, "description": "permission ids"},
                "sinks": {**_NAMES, "description": "the sinks written (none for an update)"},
                "rotates_at": {
                    "type": ["string", "null"],
                    "description": "when rotate_after makes it due (UTC); null: never",
                },
            },
        },
    ],
}
PLAN_JSON_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": f"provisioner plan --json, version {PLAN_SCHEMA_VERSION}",
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
                "required": ["key", "action", "reason", "client_id", "retire", "detail", "after"],
                "additionalProperties": False,
                "properties": {
                    "key": {"type": "string", "pattern": "^[^/]+/[^/]+$"},
                    "action": {"enum": [kind.value for kind in Kind]},
                    "reason": {"enum": [reason.value for reason in Reason]},
                    "client_id": _ID,
                    "retire": {"type": "array", "items": {"type": "string"}},
                    "detail": {"type": ["string", "null"]},
                    "after": _AFTER,
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
    restored: int = 0
    unchanged: int = 0
    failed: int = 0
    orphaned: int = 0
    in_grace: int = 0
    in_use: int = 0  # superseded, past grace, kept while still used (grace_max)
    skipped: int = 0  # never started: the run was stopped (signal, circuit breaker)
    other_owners: int = 0  # other owners' marked credentials, left alone
    deferred: int = 0  # rotations due, left to later runs by the change budget
    blocked: int = 0  # credentials that could not be planned (a sink failed its check or a read)

    @property
    def complete(self) -> bool:
        return not (self.failed or self.skipped or self.blocked)

    def line(self) -> str:
        """The summary line, then what was kept on purpose (orphans, grace)."""
        updated = f"{self.updated} updated, " if self.updated else ""
        restored = f"{self.restored} restored, " if self.restored else ""
        line = (
            f"Applied: {self.created} created, {updated}{self.replaced} replaced, {restored}"
            f"{self.deleted} deleted, {self.unchanged} unchanged, {self.failed} failed"
            f"{blocked_count(self.blocked)}."
        )
        if self.skipped:
            line += f" {self.skipped} not started."
        others = f" {self.other_owners} of other owners left alone." if self.other_owners else ""
        return (
            line
            + _kept_note(self.orphaned, self.in_grace, self.in_use)
            + deferred_note(self.deferred)
            + others
        )


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
        restored=done[Kind.RESTORE],
        unchanged=len(unchanged),
        failed=len(failed),
        skipped=len(skipped),
        orphaned=plan.count(Kind.NOOP, Reason.ORPHAN),
        in_grace=plan.count(Kind.NOOP, Reason.IN_GRACE),
        in_use=plan.count(Kind.NOOP, Reason.IN_USE),
        other_owners=sum(count for _, count in plan.other_owners),
        deferred=plan.count(Kind.NOOP, Reason.DEFERRED)
        + sum(1 for o in outcomes if o.status is Status.DEFERRED),
        blocked=plan.count(Kind.BLOCKED),
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
    if action.kind is Kind.BLOCKED:  # not planned, so not done: the cause is the error
        entry["status"] = Status.FAILED.value
        entry["error"] = action.detail
        return entry
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
