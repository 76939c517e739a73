"""The reconciliation rule table, one rule per test, without any I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from provisioner.model import (
    Action,
    DesiredCredential,
    Kind,
    Plan,
    Reason,
    RemoteCredential,
    marked_description,
)
from provisioner.reconcile.plan import grace_of, plan
from tests.support.factories import desired as make_desired

NOW = datetime(2026, 11, 1, tzinfo=UTC)
HELD_C1 = {"api/ingest": {"local": "c1"}}


def desired(
    name: str = "ingest",
    *,
    roles: tuple[str, ...] = ("r1",),
    **options: Any,
) -> DesiredCredential:
    return make_desired(name, roles=roles, **options)


def remote(
    client_id: str,
    key: str | None = "api/ingest",
    *,
    roles: frozenset[str] = frozenset({"r1"}),
    permissions: frozenset[str] | None = frozenset(),
    age: timedelta | None = timedelta(days=1),
    service_id: str | None = None,
) -> RemoteCredential:
    return RemoteCredential(
        client_id=client_id,
        description=marked_description(None, key) if key else "made by hand",
        role_ids=roles,
        service_id=service_id,
        created_at=None if age is None else NOW - age,
        permission_ids=permissions,
    )


def kinds(result: Plan) -> list[tuple[Kind, Reason]]:
    return [(a.kind, a.reason) for a in result.actions]


def only(result: Plan) -> Action:
    (action,) = result.actions
    return action


def test_missing_credential_is_created() -> None:
    result = plan([desired()], [], {}, now=NOW)
    assert kinds(result) == [(Kind.CREATE, Reason.MISSING)]


def test_credential_held_by_its_sinks_is_left_alone() -> None:
    result = plan([desired()], [remote("c1")], HELD_C1, now=NOW)
    assert kinds(result) == [(Kind.NOOP, Reason.UP_TO_DATE)]
    assert not result.has_changes


def test_a_sink_that_lost_the_secret_causes_a_replace() -> None:
    action = only(plan([desired()], [remote("c1")], {"api/ingest": {"local": None}}, now=NOW))
    assert (action.kind, action.reason, action.client_id, action.retire) == (
        Kind.REPLACE,
        Reason.LOST_SECRET,
        "c1",
        ("c1",),
    )
    assert action.detail == "local holds nothing"


def test_a_sink_holding_another_client_id_causes_a_replace_when_no_copy_is_proven() -> None:
    held = {"api/ingest": {"local": "c1", "vault": "stale"}}
    wanted = [desired(sinks=("local", "vault"))]
    unproven = frozenset({"api/ingest"})
    action = only(plan(wanted, [remote("c1")], held, now=NOW, unproven=unproven))
    assert (action.kind, action.reason) == (Kind.REPLACE, Reason.LOST_SECRET)
    assert action.detail == "vault holds stale"


def test_role_drift_alone_is_an_update_in_place() -> None:
    """Roles can change by PATCH; `retire` is what a replace would do if the API has none."""
    current = remote("c1", roles=frozenset({"r2"}))
    action = only(plan([desired()], [current], HELD_C1, now=NOW))
    assert (action.kind, action.reason, action.client_id, action.retire) == (
        Kind.UPDATE,
        Reason.DRIFT_ROLES,
        "c1",
        ("c1",),
    )
    assert action.detail == "roles r2 -> r1"


def test_role_drift_with_another_drift_or_a_rotation_is_a_replace() -> None:
    drifted = remote("c1", roles=frozenset({"r2"}), permissions=frozenset({"p9"}))
    assert only(plan([desired()], [drifted], HELD_C1, now=NOW)).kind is Kind.REPLACE
    old = remote("c1", roles=frozenset({"r2"}), age=timedelta(days=40))
    wanted = desired(rotate_after=timedelta(days=30))
    assert only(plan([wanted], [old], HELD_C1, now=NOW)).kind is Kind.REPLACE


def test_a_service_id_the_manifest_does_not_name_is_the_apis_to_fill_in() -> None:
    """The API computes service_id when the create omits it: never drift."""
    current = remote("c1", service_id="svc-computed")
    assert kinds(plan([desired()], [current], HELD_C1, now=NOW)) == [(Kind.NOOP, Reason.UP_TO_DATE)]


def test_a_credential_listed_twice_is_not_a_duplicate_of_itself() -> None:
    result = plan([desired()], [remote("c1"), remote("c1")], HELD_C1, now=NOW)
    assert kinds(result) == [(Kind.NOOP, Reason.UP_TO_DATE)]


def test_permission_drift_causes_a_replace() -> None:
    result = plan([desired(permissions=("p1",))], [remote("c1")], HELD_C1, now=NOW)
    assert kinds(result) == [(Kind.REPLACE, Reason.DRIFT_PERMISSIONS)]


def test_permissions_the_api_does_not_list_are_not_drift() -> None:
    current = remote("c1", permissions=None)
    result = plan([desired(permissions=("p1",))], [current], HELD_C1, now=NOW)
    assert kinds(result) == [(Kind.NOOP, Reason.UP_TO_DATE)]


def test_service_id_drift_causes_a_replace() -> None:
    result = plan([desired(service_id="svc-2")], [remote("c1")], HELD_C1, now=NOW)
    assert kinds(result) == [(Kind.REPLACE, Reason.DRIFT_SERVICE_ID)]
    assert result.actions[0].detail == "service_id none -> svc-2"


def test_old_credential_is_rotated() -> None:
    wanted = desired(rotate_after=timedelta(days=30))
    action = only(plan([wanted], [remote("c1", age=timedelta(days=31))], HELD_C1, now=NOW))
    assert (action.kind, action.reason, action.retire) == (Kind.REPLACE, Reason.ROTATION, ("c1",))
    assert action.detail == "31d old, rotate_after 30d"


def test_credential_younger_than_rotate_after_is_kept() -> None:
    wanted = desired(rotate_after=timedelta(days=30))
    result = plan([wanted], [remote("c1", age=timedelta(days=29))], HELD_C1, now=NOW)
    assert kinds(result) == [(Kind.NOOP, Reason.UP_TO_DATE)]


def test_undated_credential_is_never_rotated() -> None:
    wanted = desired(rotate_after=timedelta(days=30))
    result = plan([wanted], [remote("c1", age=None)], HELD_C1, now=NOW)
    assert kinds(result) == [(Kind.NOOP, Reason.UP_TO_DATE)]


def test_replace_with_grace_leaves_the_old_credential_live() -> None:
    wanted = desired(rotate_after=timedelta(days=30), grace=timedelta(hours=1))
    action = only(plan([wanted], [remote("c1", age=timedelta(days=31))], HELD_C1, now=NOW))
    assert (action.kind, action.client_id, action.retire) == (Kind.REPLACE, "c1", ())


def test_lost_secret_with_grace_leaves_the_old_credential_live() -> None:
    wanted = desired(grace=timedelta(hours=1))
    action = only(plan([wanted], [remote("c1")], {"api/ingest": {"local": None}}, now=NOW))
    assert (action.kind, action.reason, action.retire) == (Kind.REPLACE, Reason.LOST_SECRET, ())


def test_duplicates_keep_the_one_the_sinks_hold() -> None:
    found = [remote("c1", age=timedelta(days=2)), remote("c2")]
    result = plan([desired()], found, HELD_C1, now=NOW)
    assert [(a.kind, a.reason, a.client_id) for a in result.actions] == [
        (Kind.NOOP, Reason.UP_TO_DATE, "c1"),
        (Kind.DELETE, Reason.DUPLICATE, "c2"),
    ]


def test_older_duplicates_are_superseded() -> None:
    found = [remote("c0", age=timedelta(days=3)), remote("c1")]
    result = plan([desired()], found, HELD_C1, now=NOW)
    assert kinds(result)[1] == (Kind.DELETE, Reason.SUPERSEDED)


def test_duplicates_none_of_which_the_sinks_hold_are_all_replaced() -> None:
    found = [remote("c1", age=timedelta(days=2)), remote("c2")]
    action = only(plan([desired()], found, {"api/ingest": {"local": "gone"}}, now=NOW))
    assert (action.kind, action.reason) == (Kind.REPLACE, Reason.LOST_SECRET)
    assert set(action.retire) == {"c1", "c2"}


def test_duplicate_kept_one_that_drifted_is_replaced_and_the_others_deleted() -> None:
    found = [remote("c1", permissions=frozenset({"p9"})), remote("c2", age=timedelta(hours=1))]
    result = plan([desired()], found, HELD_C1, now=NOW)
    assert [(a.kind, a.client_id) for a in result.actions] == [
        (Kind.REPLACE, "c1"),
        (Kind.DELETE, "c2"),
    ]
    assert result.actions[0].retire == ("c1",)


def test_superseded_credential_waits_out_the_grace_period() -> None:
    wanted = desired(grace=timedelta(hours=1))
    young = [remote("old", age=timedelta(days=2)), remote("new", age=timedelta(minutes=5))]
    held = {"api/ingest": {"local": "new"}}
    waiting = plan([wanted], young, held, now=NOW)
    assert kinds(waiting)[1] == (Kind.NOOP, Reason.IN_GRACE)
    assert waiting.actions[1].detail == "the sinks hold new; grace 1h ends 2026-11-01T00:55:00Z"
    later = NOW + timedelta(hours=2)
    assert kinds(plan([wanted], young, held, now=later))[1] == (Kind.DELETE, Reason.SUPERSEDED)


def test_grace_is_capped_at_rotate_after() -> None:
    """A grace longer than the rotation period would keep superseded credentials forever."""
    wanted = desired(rotate_after=timedelta(hours=1), grace=timedelta(days=1))
    assert grace_of(wanted) == timedelta(hours=1)
    found = [remote("old", age=timedelta(hours=3)), remote("new", age=timedelta(hours=2))]
    result = plan([wanted], found, {"api/ingest": {"local": "new"}}, now=NOW)
    assert kinds(result) == [(Kind.REPLACE, Reason.ROTATION), (Kind.DELETE, Reason.SUPERSEDED)]


def test_zero_rotate_after_means_never() -> None:
    wanted = desired(rotate_after=timedelta(0), grace=timedelta(hours=1))
    result = plan([wanted], [remote("c1", age=timedelta(days=400))], HELD_C1, now=NOW)
    assert kinds(result) == [(Kind.NOOP, Reason.UP_TO_DATE)]
    assert grace_of(wanted) == timedelta(hours=1)


def test_undated_kept_credential_holds_nothing_in_grace() -> None:
    wanted = desired(grace=timedelta(hours=1))
    found = [remote("old", age=timedelta(days=2)), remote("new", age=None)]
    result = plan([wanted], found, {"api/ingest": {"local": "new"}}, now=NOW)
    assert kinds(result)[1] == (Kind.DELETE, Reason.DUPLICATE)


def test_orphans_are_reported_and_deleted_only_with_prune() -> None:
    orphan = remote("c9", key="gone/away")
    assert kinds(plan([], [orphan], {}, now=NOW)) == [(Kind.NOOP, Reason.ORPHAN)]
    assert kinds(plan([], [orphan], {}, now=NOW, prune=True)) == [(Kind.DELETE, Reason.ORPHAN)]


def test_unmarked_credentials_never_appear_in_actions() -> None:
    lookalike = RemoteCredential("copy", "[provisioner:api/ingest] copy", frozenset(), None, NOW)
    result = plan([desired()], [remote("hand", key=None), lookalike], {}, now=NOW, prune=True)
    assert kinds(result) == [(Kind.CREATE, Reason.MISSING)]


def test_write_only_sinks_count_as_holding_whatever_is_live() -> None:
    result = plan([desired(sinks=("stdout",))], [remote("c1")], {"api/ingest": {}}, now=NOW)
    assert kinds(result) == [(Kind.NOOP, Reason.UP_TO_DATE)]


def test_with_only_write_only_sinks_the_newest_duplicate_is_kept() -> None:
    found = [remote("c2"), remote("c1", age=timedelta(days=3))]
    result = plan([desired(sinks=("stdout",))], found, {"api/ingest": {}}, now=NOW)
    assert [(a.kind, a.client_id) for a in result.actions] == [
        (Kind.NOOP, "c2"),
        (Kind.DELETE, "c1"),
    ]


def test_every_marked_credential_of_a_key_is_known_to_its_replace() -> None:
    """The engine must never take an in-grace credential for a leftover of its own create."""
    wanted = desired(grace=timedelta(hours=1))
    found = [remote("old", age=timedelta(minutes=30)), remote("c1", age=timedelta(minutes=10))]
    result = plan([wanted], found, {"api/ingest": {"local": None}}, now=NOW)  # secret lost
    replace = result.actions[0]
    assert (replace.kind, replace.client_id, replace.retire) == (Kind.REPLACE, "c1", ("old",))
    assert set(replace.known) == {"old", "c1"}


def test_a_replace_waits_while_another_credential_is_in_grace() -> None:
    """Drift again within grace: a third live credential would be one too many; nothing breaks."""
    wanted = desired(grace=timedelta(hours=1), roles=("r2",))
    found = [remote("old", age=timedelta(hours=2)), remote("c1", age=timedelta(minutes=10))]
    kept, other = plan([wanted], found, HELD_C1, now=NOW).actions
    assert (kept.kind, kept.reason, kept.client_id) == (Kind.NOOP, Reason.DRIFT_ROLES, "c1")
    assert "waits for the grace of old to end" in kept.detail
    assert (other.kind, other.reason) == (Kind.NOOP, Reason.IN_GRACE)


def test_a_waiting_replace_goes_ahead_once_the_grace_has_ended() -> None:
    wanted = desired(grace=timedelta(hours=1), permissions=("p1",))
    found = [remote("old", age=timedelta(hours=3)), remote("c1", age=timedelta(hours=1))]
    kept, other = plan([wanted], found, HELD_C1, now=NOW).actions
    assert (kept.kind, kept.reason, kept.retire) == (Kind.REPLACE, Reason.DRIFT_PERMISSIONS, ())
    assert (other.kind, other.client_id) == (Kind.DELETE, "old")


def test_a_lost_secret_under_grace_keeps_only_the_newest_beside_the_new_one() -> None:
    """No sink holds any: this cannot wait, so older ones go once the new one is delivered."""
    wanted = desired(grace=timedelta(hours=1))
    found = [remote(f"c{age}", age=timedelta(minutes=age)) for age in (50, 40, 30)]
    (replace,) = plan([wanted], found, {"api/ingest": {"local": "gone"}}, now=NOW).actions
    assert (replace.kind, replace.reason) == (Kind.REPLACE, Reason.LOST_SECRET)
    assert (replace.client_id, set(replace.retire)) == ("c30", {"c50", "c40"})


def test_actions_follow_the_manifest_order_then_orphans() -> None:
    wanted = [desired("b"), desired("a")]
    result = plan(wanted, [remote("o", key="gone/x")], {}, now=NOW)
    assert [a.key for a in result.actions] == ["api/b", "api/a", "gone/x"]


def test_summary_counts_by_kind() -> None:
    wanted = [desired("a"), desired("ingest")]
    result = plan(wanted, [remote("c1"), remote("o", key="gone/x")], HELD_C1, now=NOW)
    assert result.count(Kind.CREATE) == 1
    assert result.count(Kind.NOOP) == 2
    assert result.count(Kind.NOOP, Reason.ORPHAN) == 1


def test_role_drift_with_a_sink_that_lost_the_record_is_a_replace() -> None:
    """An update in place would leave that sink without the secret; a replace fills every sink."""
    wanted = desired(sinks=("local", "vault"))
    current = remote("c1", roles=frozenset({"r2"}))
    held = {"api/ingest": {"local": None, "vault": "c1"}}
    action = only(plan([wanted], [current], held, now=NOW))
    assert (action.kind, action.reason) == (Kind.REPLACE, Reason.DRIFT_ROLES)
