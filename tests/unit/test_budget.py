"""The change budget, without a network: what counts, when a plan is refused, rolling rotation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from provisioner.model import Action, Kind, Plan, Reason
from provisioner.reconcile.budget import counts, parse_limit, within_budget
from tests.support.factories import desired

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def action(kind: Kind, reason: Reason, key: str, *, held: bool = False, age: int = 1) -> Action:
    return Action(
        kind,
        key,
        reason,
        desired(key.split("/")[1]),
        f"c-{key}",
        held=held,
        created_at=NOW - timedelta(days=age),
    )


def noops(count: int) -> list[Action]:
    return [action(Kind.NOOP, Reason.UP_TO_DATE, f"api/ok{i}") for i in range(count)]


@pytest.mark.parametrize(
    ("spec", "managed", "limit"),
    [
        ("25%", 20, 5),
        ("25%", 100, 25),
        ("25%", 4, 5),
        ("10", 100, 10),
        ("0", 3, 0),
        ("all", 9, None),
    ],
)
def test_the_limit_is_a_share_of_the_managed_credentials_never_fewer_than_five(
    spec: str, managed: int, limit: int | None
) -> None:
    assert parse_limit(spec, managed).limit == limit


def test_an_invalid_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="expected N, P% or all"):
        parse_limit("lots", 10)


def test_what_counts_against_the_budget() -> None:
    assert counts(action(Kind.DELETE, Reason.ORPHAN, "a/b"))
    assert counts(action(Kind.REPLACE, Reason.DRIFT_ROLES, "a/b", held=True))
    assert counts(action(Kind.DELETE, Reason.DUPLICATE, "a/b", held=True))
    assert not counts(action(Kind.CREATE, Reason.MISSING, "a/b"))
    assert not counts(action(Kind.REPLACE, Reason.LOST_SECRET, "a/b"))  # no sink holds it
    assert not counts(action(Kind.DELETE, Reason.DUPLICATE, "a/b"))
    assert not counts(action(Kind.DELETE, Reason.SUPERSEDED, "a/b"))


def test_pruning_15_of_20_is_refused_by_default_and_allowed_with_all() -> None:
    orphans = [action(Kind.DELETE, Reason.ORPHAN, f"old/o{i}") for i in range(15)]
    the_plan = Plan((*noops(5), *orphans))
    verdict = within_budget(the_plan, "25%")
    assert verdict.exceeded
    refusal = verdict.refusal()
    assert refusal.startswith(
        "15 changes exceed the change budget of 5 (25% of 20 managed credentials, at least 5): "
        "15 to delete (orphan): old/o0, old/o1, old/o2, old/o3, old/o4 and 10 more."
    )
    assert "--max-changes 15 (or --max-changes all)" in refusal
    assert not within_budget(the_plan, "all").exceeded
    assert not within_budget(the_plan, "15").exceeded


def test_creates_never_spend_the_budget() -> None:
    creates = [action(Kind.CREATE, Reason.MISSING, f"api/n{i}") for i in range(50)]
    assert not within_budget(Plan(tuple(creates)), "0").exceeded


def test_rotations_beyond_the_budget_are_deferred_oldest_first() -> None:
    rotations = [
        action(Kind.REPLACE, Reason.ROTATION, f"api/r{i}", held=True, age=100 + i)
        for i in range(30)
    ]
    drift = action(Kind.REPLACE, Reason.DRIFT_ROLES, "api/drift", held=True)
    verdict = within_budget(Plan((drift, *rotations)), "25%")  # 31 managed: a budget of 7
    assert not verdict.exceeded
    assert verdict.deferred == 24
    rotated = [a.key for a in verdict.plan.actions if a.reason is Reason.ROTATION]
    assert sorted(rotated) == sorted(f"api/r{i}" for i in range(24, 30))  # the oldest six
    deferred = [a for a in verdict.plan.actions if a.reason is Reason.DEFERRED]
    assert all(a.kind is Kind.NOOP and a.retire == () for a in deferred)
    assert not verdict.plan.count(Kind.REPLACE, Reason.ROTATION) > 6


def test_rotations_alone_never_trip_the_budget() -> None:
    rotations = [action(Kind.REPLACE, Reason.ROTATION, f"api/r{i}", held=True) for i in range(9)]
    verdict = within_budget(Plan(tuple(rotations)), "0")
    assert not verdict.exceeded
    assert verdict.deferred == 9
    assert not verdict.plan.has_changes
