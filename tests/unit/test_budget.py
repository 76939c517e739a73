"""The change budget, without a network: what counts, when a plan is refused, rolling rotation."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from provisioner.model import Action, Allowance, DesiredCredential, Kind, Plan, Reason
from provisioner.reconcile.budget import counts, parse_limit, within_budget
from tests.support.factories import desired

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def action(kind: Kind, reason: Reason, key: str, *, age: int = 1) -> Action:
    return Action(
        kind,
        key,
        reason,
        desired(key.split("/")[1]),
        f"c-{key}",
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
    assert counts(action(Kind.REPLACE, Reason.DRIFT_ROLES, "a/b"))
    assert counts(action(Kind.DELETE, Reason.DUPLICATE, "a/b"))
    assert not counts(action(Kind.CREATE, Reason.MISSING, "a/b"))
    assert not counts(action(Kind.UPDATE, Reason.DRIFT_ROLES, "a/b"))
    assert not counts(action(Kind.RESTORE, Reason.LOST_SECRET, "a/b"))
    # Issue 21: every change that ends a live credential's life counts, whatever the sinks
    # hold (a sink pointed at an empty directory holds nothing), and so does a create of a
    # key another owner holds (a wrong `owner:`). These were not counted before.
    assert counts(action(Kind.REPLACE, Reason.LOST_SECRET, "a/b"))  # no sink holds it
    assert counts(action(Kind.DELETE, Reason.DUPLICATE, "a/b"))
    assert counts(action(Kind.DELETE, Reason.SUPERSEDED, "a/b"))
    taken = dataclasses.replace(action(Kind.CREATE, Reason.MISSING, "a/b"), taken_by="them")
    assert counts(taken)
    # What a killed run created and never delivered: nobody has its secret.
    leftover = dataclasses.replace(action(Kind.REPLACE, Reason.LOST_SECRET, "a/b"), leftover=True)
    assert not counts(leftover)


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
    rotations = [action(Kind.REPLACE, Reason.ROTATION, f"api/r{i}", age=100 + i) for i in range(30)]
    drift = action(Kind.REPLACE, Reason.DRIFT_ROLES, "api/drift")
    verdict = within_budget(Plan((drift, *rotations)), "25%")  # 31 managed: a budget of 7
    assert not verdict.exceeded
    assert verdict.deferred == 24
    rotated = [a.key for a in verdict.plan.actions if a.reason is Reason.ROTATION]
    assert sorted(rotated) == sorted(f"api/r{i}" for i in range(24, 30))  # the oldest six
    deferred = [a for a in verdict.plan.actions if a.reason is Reason.DEFERRED]
    assert all(a.kind is Kind.NOOP and a.retire == () for a in deferred)
    assert not verdict.plan.count(Kind.REPLACE, Reason.ROTATION) > 6


def test_rotations_alone_never_trip_the_budget() -> None:
    rotations = [action(Kind.REPLACE, Reason.ROTATION, f"api/r{i}") for i in range(9)]
    verdict = within_budget(Plan(tuple(rotations)), "0")
    assert not verdict.exceeded
    assert verdict.deferred == 9
    assert not verdict.plan.has_changes


def test_replacing_twenty_credentials_no_sink_holds_is_refused() -> None:
    """The only sink pointed at an empty directory: 20 lost-secret replaces, default budget 5."""
    lost = [action(Kind.REPLACE, Reason.LOST_SECRET, f"svc/c{i:02d}") for i in range(20)]
    verdict = within_budget(Plan(tuple(lost)), "25%")
    assert verdict.exceeded
    assert verdict.refusal().startswith(
        "20 changes exceed the change budget of 5 (25% of 20 managed credentials, at least 5): "
        "20 to replace (lost-secret): svc/c00"
    )


def mine(name: str) -> DesiredCredential:
    return dataclasses.replace(desired(name, service="svc"), owner="typo")


def creates_taken_by(owner: str, count: int) -> list[Action]:
    return [
        dataclasses.replace(
            Action(Kind.CREATE, f"svc/c{i:02d}", Reason.MISSING, mine(f"c{i:02d}")),
            taken_by=owner,
        )
        for i in range(count)
    ]


def test_a_run_whose_owner_holds_nothing_while_another_holds_every_key_is_refused() -> None:
    verdict = within_budget(Plan(tuple(creates_taken_by("payments", 3))), "25%")
    assert verdict.exceeded  # three creates fit the budget of 5: the owner is what is wrong
    refusal = verdict.refusal()
    assert "owner 'typo' holds no credential in this account" in refusal
    assert "did you mean `owner: payments`?" in refusal
    assert "Nothing was changed" in refusal
    assert not within_budget(Plan(tuple(creates_taken_by("payments", 3))), "all").exceeded
    # `owner:` added to manifests whose credentials were made without one.
    refusal = within_budget(Plan(tuple(creates_taken_by("default", 3))), "25%").refusal()
    assert "did you mean no `owner:` (the default)?" in refusal


def test_a_new_owner_sharing_some_key_names_is_not_suspect() -> None:
    mixed = [*creates_taken_by("payments", 2), Action(Kind.CREATE, "web/x", Reason.MISSING)]
    assert not within_budget(Plan(tuple(mixed)), "25%").exceeded
    held = action(Kind.NOOP, Reason.UP_TO_DATE, "api/ok")  # the run's owner holds one
    assert not within_budget(Plan((held, *creates_taken_by("payments", 3))), "25%").exceeded


def test_a_superseded_delete_goes_with_its_keys_rotation_and_is_deferred_not_refused() -> None:
    rotations = [action(Kind.REPLACE, Reason.ROTATION, f"api/r{i}", age=100 + i) for i in range(6)]
    superseded = Action(Kind.DELETE, "api/r5", Reason.SUPERSEDED, None, "old-r5")
    verdict = within_budget(Plan((*rotations, superseded)), "25%")  # 6 managed: a budget of 5
    assert not verdict.exceeded
    # api/r5 is the oldest, but its rotation and delete together would leave three live if
    # only the rotation were done: the key goes as one, two changes.
    done = {a.key for a in verdict.plan.actions if a.writes}
    assert done == {"api/r5", "api/r4", "api/r3", "api/r2"}
    assert verdict.deferred == 2
    assert verdict.room == 0


def test_a_deferred_rotation_that_would_refill_a_lost_sink_restores_it() -> None:
    due = dataclasses.replace(
        action(Kind.REPLACE, Reason.ROTATION, "api/r", age=100),
        source="dotenv",
        targets=("files",),
    )
    verdict = within_budget(Plan((due,)), "0")
    (restore,) = verdict.plan.actions
    assert (restore.kind, restore.reason, restore.source, restore.targets) == (
        Kind.RESTORE,
        Reason.LOST_SECRET,
        "dotenv",
        ("files",),
    )
    assert restore.retire == ()
    assert "copy from dotenv to files; rotation deferred" in restore.detail


def test_the_room_left_is_what_apply_may_still_spend_on_updates_turned_replaces() -> None:
    drift = action(Kind.REPLACE, Reason.DRIFT_ROLES, "api/d")
    verdict = within_budget(Plan((drift, *noops(19))), "25%")
    assert verdict.room == 4
    allowance = Allowance(verdict.room)
    assert [allowance.take() for _ in range(5)] == [True, True, True, True, False]
    assert within_budget(Plan((drift,)), "all").room is None
    assert Allowance(None).take()
