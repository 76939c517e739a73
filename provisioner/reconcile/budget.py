"""The change budget: how many destructive changes one run may make. Pure.

Counted: every change that ends a live credential's life, whatever the sinks hold (every replace,
whatever its cause, and every delete), and every create for a key another owner holds. Not
counted: other creates, updates in place, restores, ending what an interrupted run left
(younger than a day, held by no sink: see `plan.LEFTOVER_AGE`), and trying again a project key's
delete that ended `delete_failed` (the run that asked for it counted it).

Scheduled work never stops a run: rotations and deletes of superseded credentials past their
grace are done, oldest key first, within what the budget leaves; the rest wait for later runs (a
deferred rotation still restores a lost sink). A run whose owner holds nothing while another
owner holds every key it wants is refused outright: most likely a wrong `owner:`.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from provisioner.config import MAX_CHANGES_PATTERN
from provisioner.model import DEFAULT_OWNER, Action, Kind, Plan, Reason

PATTERN = re.compile(MAX_CHANGES_PATTERN)
#: A percentage never allows fewer changes than this: small accounts would otherwise be stuck.
MINIMUM = 5
_SHOWN = 5  # keys named per group in a refusal; the rest are counted


@dataclass(frozen=True)
class Budget:
    """The most counted changes a run may make (None: no limit), and where that number came from."""

    limit: int | None
    spec: str
    managed: int

    def describe(self) -> str:
        """`5 (25% of 20 managed credentials, at least 5)`."""
        if self.limit is None:
            return "unlimited (all)"
        if not self.spec.endswith("%"):
            return str(self.limit)
        return (
            f"{self.limit} ({self.spec} of {self.managed} managed credentials, at least {MINIMUM})"
        )


@dataclass(frozen=True)
class Verdict:
    """A plan within its budget: rotations beyond it deferred, and the changes that count."""

    plan: Plan
    budget: Budget
    changes: tuple[Action, ...]  # counted changes other than scheduled ones
    deferred: int
    scheduled: int = 0  # counted scheduled changes done this run (rotations, superseded)
    # (run's owner, other owner, keys): the run's owner holds nothing, the other all its keys.
    suspect_owner: tuple[str, str, int] | None = field(default=None)

    @property
    def exceeded(self) -> bool:
        if self.budget.limit is None:
            return False
        return self.suspect_owner is not None or len(self.changes) > self.budget.limit

    @property
    def room(self) -> int | None:
        """Counted changes still allowed once the plan's are done; None: no limit."""
        if self.budget.limit is None:
            return None
        return max(0, self.budget.limit - len(self.changes) - self.scheduled)

    def refusal(self) -> str:
        """What exceeded which budget, and how to proceed; for an exceeded verdict."""
        if self.suspect_owner is not None:
            return _wrong_owner(*self.suspect_owner)
        groups: dict[tuple[Kind, Reason], list[str]] = {}
        for action in self.changes:
            groups.setdefault((action.kind, action.reason), []).append(action.key)
        listed = "; ".join(
            f"{len(keys)} to {kind.value} ({reason.value}): {_some(keys)}"
            for (kind, reason), keys in groups.items()
        )
        count = len(self.changes)
        return (
            f"{count} changes exceed the change budget of {self.budget.describe()}: {listed}. "
            f"Nothing was changed. Review the plan; to proceed, run again with "
            f"--max-changes {count} (or --max-changes all), or set PROVISIONER_MAX_CHANGES"
        )


def parse_limit(spec: str, managed: int) -> Budget:
    """The budget a `--max-changes` value gives for `managed` credentials; ValueError if invalid."""
    spec = spec.strip().lower()
    if not PATTERN.match(spec):
        raise ValueError(f"expected N, P% or all, got {spec!r}")
    if spec == "all":
        return Budget(None, spec, managed)
    if spec.endswith("%"):
        return Budget(max(MINIMUM, int(spec[:-1]) * managed // 100), spec, managed)
    return Budget(int(spec), spec, managed)


def managed_count(plan: Plan) -> int:
    """The credentials the run's owner manages: every key the plan concerns, orphans included."""
    return len({action.key for action in plan.actions})


def counts(action: Action) -> bool:
    """Whether an action spends the budget: it ends a live credential's life, or it makes a
    credential of a key another owner holds (a wrong `owner:` would remake every key)."""
    if action.kind is Kind.DELETE and action.reason is Reason.DELETE_FAILED:
        return False  # a delete an earlier run made (and counted), tried again
    if action.kind in (Kind.DELETE, Kind.REPLACE):
        return not action.leftover  # what a killed run made and never delivered: nobody has it
    return action.kind is Kind.CREATE and action.taken_by is not None


def scheduled(action: Action) -> bool:
    """Counted work that is due rather than asked for: deferred, never refused."""
    if action.kind is Kind.REPLACE:
        return action.reason is Reason.ROTATION
    return action.kind is Kind.DELETE and action.reason is Reason.SUPERSEDED


def within_budget(plan: Plan, spec: str) -> Verdict:
    """Apply the budget `spec` to a plan: defer the scheduled work it cannot afford, count the
    rest."""
    budget = parse_limit(spec, managed_count(plan))
    counted = [a for a in plan.actions if counts(a)]
    changes = tuple(a for a in counted if not scheduled(a))
    due = [a for a in counted if scheduled(a)]
    suspect = suspect_owner(plan)
    if budget.limit is None:
        return Verdict(plan, budget, changes, 0, len(due), suspect)
    room = max(0, budget.limit - len(changes))
    # A key's scheduled work goes together: a rotation done while its superseded credential
    # waits would leave three live.
    by_key: dict[str, list[Action]] = defaultdict(list)
    for action in due:
        by_key[action.key].append(action)
    deferred: set[int] = set()
    spent = 0
    for key_actions in sorted(by_key.values(), key=_oldest):
        if spent + len(key_actions) <= room:
            spent += len(key_actions)
        else:
            deferred.update(id(a) for a in key_actions)
    actions = tuple(_defer(a, budget) if id(a) in deferred else a for a in plan.actions)
    the_plan = dataclasses.replace(plan, actions=actions)
    return Verdict(the_plan, budget, changes, len(deferred), spent, suspect)


def suspect_owner(plan: Plan) -> tuple[str, str, int] | None:
    """(the run's owner, the other owner, how many keys) when the run's owner holds no credential
    while one other owner holds every key the run would create: most likely a wrong `owner:`."""
    if any(action.client_id is not None for action in plan.actions):
        return None  # the run's owner holds something: it is no stranger to this account
    creates = [a for a in plan.actions if a.kind is Kind.CREATE]
    holders = Counter(a.taken_by for a in creates if a.taken_by is not None)
    if not creates or not holders:
        return None
    other, held = holders.most_common(1)[0]
    if held < len(creates):
        return None
    assert creates[0].desired is not None
    return creates[0].desired.owner, other, held


def _wrong_owner(owner: str, other: str, keys: int) -> str:
    # The default owner is the one manifests without `owner:` have: suggest leaving it out.
    meant = "no `owner:` (the default)" if other == DEFAULT_OWNER else f"`owner: {other}`"
    return (
        f"owner {owner!r} holds no credential in this account, but owner {other!r} holds all "
        f"{keys} of the keys this run would create: did you mean {meant}? Nothing was "
        f"changed. If {owner!r} is meant to share these key names with {other!r}, run again "
        f"with --max-changes all (or set PROVISIONER_MAX_CHANGES=all) once"
    )


def _oldest(actions: Sequence[Action]) -> tuple[float, str]:
    # Rotations are only ever planned for dated credentials; undated ones sort first.
    dated = [a.created_at.timestamp() for a in actions if a.created_at is not None]
    return (min(dated) if dated else 0.0, actions[0].key)


def _defer(action: Action, budget: Budget) -> Action:
    """Scheduled work left for a later run: its credential stays as it is. A rotation that would
    also have refilled a sink that lost the record restores that sink instead."""
    spent = f"the change budget of {budget.describe()} is spent this run"
    if action.source is not None:
        targets = ", ".join(action.targets)
        detail = f"copy from {action.source} to {targets}; rotation deferred: {spent}"
        wanted, born = action.desired, action.created_at
        due = born + wanted.rotate_after if wanted and wanted.rotate_after and born else None
        return dataclasses.replace(
            action,
            kind=Kind.RESTORE,
            reason=Reason.LOST_SECRET,
            retire=(),
            detail=detail,
            rotates_at=due,
        )
    detail = f"{action.detail}; {spent}"
    return dataclasses.replace(
        action, kind=Kind.NOOP, reason=Reason.DEFERRED, retire=(), detail=detail
    )


def _some(keys: Sequence[str]) -> str:
    shown = ", ".join(keys[:_SHOWN])
    return shown + (f" and {len(keys) - _SHOWN} more" if len(keys) > _SHOWN else "")
