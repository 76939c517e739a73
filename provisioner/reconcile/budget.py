"""The change budget: how many changes that consumers would notice one run may make. Pure.

Counted: replaces and deletes of credentials some sink holds, and deletes of orphans. Not counted:
creates, restores, and deleting duplicates or lost credentials no sink holds. Rotations never stop
a run: the oldest due are rotated within what the budget leaves, the rest wait for later runs.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass

from provisioner.config import MAX_CHANGES_PATTERN
from provisioner.model import Action, Kind, Plan, Reason

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
    changes: tuple[Action, ...]  # counted changes other than rotations
    deferred: int

    @property
    def exceeded(self) -> bool:
        return self.budget.limit is not None and len(self.changes) > self.budget.limit

    def refusal(self) -> str:
        """What exceeded which budget, and how to proceed; for an exceeded verdict."""
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
    """Whether an action spends the budget: consumers would notice it."""
    if action.kind is Kind.DELETE:
        return action.held or action.reason is Reason.ORPHAN
    return action.kind is Kind.REPLACE and action.held


def within_budget(plan: Plan, spec: str) -> Verdict:
    """Apply the budget `spec` to a plan: defer the rotations it cannot afford, count the rest."""
    budget = parse_limit(spec, managed_count(plan))
    counted = [a for a in plan.actions if counts(a)]
    changes = tuple(a for a in counted if a.reason is not Reason.ROTATION)
    rotations = [a for a in counted if a.reason is Reason.ROTATION]
    if budget.limit is None:
        return Verdict(plan, budget, changes, 0)
    room = max(0, budget.limit - len(changes))
    deferred = {id(a) for a in _oldest_first(rotations)[room:]}
    actions = tuple(_defer(a, budget) if id(a) in deferred else a for a in plan.actions)
    return Verdict(dataclasses.replace(plan, actions=actions), budget, changes, len(deferred))


def _oldest_first(rotations: Sequence[Action]) -> list[Action]:
    # Rotations are only ever planned for dated credentials.
    return sorted(rotations, key=lambda a: (a.created_at.timestamp() if a.created_at else 0, a.key))


def _defer(action: Action, budget: Budget) -> Action:
    """A rotation left for a later run: its credential stays as it is."""
    detail = f"{action.detail}; the change budget of {budget.describe()} is spent this run"
    return dataclasses.replace(
        action, kind=Kind.NOOP, reason=Reason.DEFERRED, retire=(), detail=detail
    )


def _some(keys: Sequence[str]) -> str:
    shown = ", ".join(keys[:_SHOWN])
    return shown + (f" and {len(keys) - _SHOWN} more" if len(keys) > _SHOWN else "")
