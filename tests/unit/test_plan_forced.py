"""`--replace KEY` (only the keys given, honouring grace), heal's newest-wins rule, odd values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from provisioner.model import Kind, Reason, RemoteCredential, marked_description, owner_key
from provisioner.reconcile.plan import plan
from tests.support.factories import desired

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def remote(client_id: str, key: str = "api/ingest") -> RemoteCredential:
    return RemoteCredential(
        client_id=client_id,
        description=marked_description(None, key),
        role_ids=frozenset({"role-admin"}),
        service_id=None,
        created_at=NOW - timedelta(days=1),
    )


def test_a_forced_key_is_replaced_and_the_others_are_left_alone() -> None:
    wanted = [desired("ingest"), desired("report")]
    world = [remote("c1"), remote("c2", "api/report")]
    held = {"api/ingest": {"local": "c1"}, "api/report": {"local": "c2"}}
    result = plan(wanted, world, held, now=NOW, replace=frozenset({"api/report"}))
    assert [(a.kind, a.reason, a.client_id, a.retire) for a in result.actions] == [
        (Kind.NOOP, Reason.UP_TO_DATE, "c1", ()),
        (Kind.REPLACE, Reason.FORCED, "c2", ("c2",)),
    ]
    assert result.actions[1].detail == "--replace"


def test_a_forced_replace_honours_grace() -> None:
    wanted = desired(grace=timedelta(hours=1))
    (action,) = plan(
        [wanted],
        [remote("c1")],
        {"api/ingest": {"local": "c1"}},
        now=NOW,
        replace=frozenset({"api/ingest"}),
    ).actions
    assert (action.kind, action.reason, action.retire) == (Kind.REPLACE, Reason.FORCED, ())


def test_a_forced_key_whose_sinks_lost_it_says_forced_and_why() -> None:
    (action,) = plan(
        [desired()],
        [remote("c1")],
        {"api/ingest": {"local": None}},
        now=NOW,
        replace=frozenset({"api/ingest"}),
    ).actions
    assert (action.kind, action.reason) == (Kind.REPLACE, Reason.FORCED)
    assert action.detail == "--replace; local holds nothing"


def test_a_forced_key_that_does_not_exist_yet_is_simply_created() -> None:
    (action,) = plan([desired()], [], {}, now=NOW, replace=frozenset({"api/ingest"})).actions
    assert (action.kind, action.reason) == (Kind.CREATE, Reason.MISSING)


def test_a_forced_key_whose_earlier_replacement_is_in_grace_is_replaced_now() -> None:
    """Issue 21: this was a noop, and `apply --replace` exited 0 having done nothing."""
    wanted = desired(grace=timedelta(hours=1))
    older = remote("c1")
    kept = RemoteCredential(
        "c2", older.description, older.role_ids, None, NOW - timedelta(minutes=5)
    )
    (action,) = plan(
        [wanted],
        [older, kept],
        {"api/ingest": {"local": "c2"}},
        now=NOW,
        replace=frozenset({"api/ingest"}),
    ).actions
    assert (action.kind, action.reason, action.client_id) == (Kind.REPLACE, Reason.FORCED, "c2")
    assert action.retire == ("c1",)  # the one in grace goes; c2 keeps its grace beside the new
    assert action.detail == "--replace; cuts the grace of c1 short: at most two live"


# --- heal: newest wins (issue 21) ---------------------------------------------------------------


def dated(client_id: str, age: timedelta) -> RemoteCredential:
    return RemoteCredential(
        client_id,
        marked_description(None, "api/ingest"),
        frozenset({"role-admin"}),
        None,
        NOW - age,
    )


def test_a_sibling_holding_an_older_credential_is_never_the_source() -> None:
    wanted = desired(sinks=("a", "b", "c"), grace=timedelta(hours=1))
    world = [dated("old", timedelta(minutes=30)), dated("new", timedelta(minutes=10))]
    held = {"api/ingest": {"a": "old", "b": "old", "c": "new"}}  # most sinks hold the older
    first, other = plan([wanted], world, held, now=NOW).actions
    assert (first.kind, first.client_id, first.source, first.targets) == (
        Kind.RESTORE,
        "new",
        "c",
        ("a", "b"),
    )
    assert (other.kind, other.reason, other.client_id) == (Kind.NOOP, Reason.IN_GRACE, "old")


def test_the_newest_held_by_no_sink_is_replaced_never_healed_from_an_older_one() -> None:
    wanted = desired(sinks=("files", "dotenv"), grace=timedelta(hours=1))
    world = [dated("leaked", timedelta(minutes=30)), dated("rotated", timedelta(minutes=10))]
    held = {"api/ingest": {"files": None, "dotenv": "leaked"}}
    (action,) = plan([wanted], world, held, now=NOW).actions
    assert (action.kind, action.reason, action.client_id) == (
        Kind.REPLACE,
        Reason.LOST_SECRET,
        "rotated",
    )
    assert action.retire == ("leaked",)  # the newest stays for its grace; never deleted


def test_a_rotation_over_a_lost_sink_carries_its_source_for_the_budget() -> None:
    wanted = desired(sinks=("files", "dotenv"), rotate_after=timedelta(days=90))
    (action,) = plan(
        [wanted],
        [dated("c1", timedelta(days=100))],
        {"api/ingest": {"files": None, "dotenv": "c1"}},
        now=NOW,
    ).actions
    assert (action.kind, action.reason) == (Kind.REPLACE, Reason.ROTATION)
    assert (action.source, action.targets) == ("dotenv", ("files",))


# --- hostile values ------------------------------------------------------------------------------


def test_a_credential_dated_in_year_9999_plans_without_overflow() -> None:
    far = RemoteCredential(
        "c2",
        marked_description(None, "api/ingest"),
        frozenset({"role-admin"}),
        None,
        datetime(9999, 12, 31, 23, 0, tzinfo=UTC),
    )
    wanted = desired(sinks=("a", "b"), rotate_after=timedelta(days=90), grace=timedelta(hours=1))
    actions = plan([wanted], [remote("c1"), far], {"api/ingest": {"a": None, "b": "c2"}}, now=NOW)
    first, other = actions.actions
    assert (first.kind, first.client_id) == (Kind.RESTORE, "c2")  # not due: it is not old
    assert first.rotates_at == datetime.max.replace(tzinfo=UTC)
    assert (other.reason, other.client_id) == (Reason.IN_GRACE, "c1")
    assert other.detail.endswith("ends 9999-12-31T23:59:59Z")


def test_a_create_of_a_key_another_owner_holds_names_that_owner() -> None:
    theirs = RemoteCredential(
        "t1", marked_description(None, "api/ingest", "payments"), frozenset(), None, NOW
    )
    (action,) = plan([desired()], [theirs], {"api/ingest": {"local": None}}, now=NOW).actions
    assert (action.kind, action.taken_by) == (Kind.CREATE, "payments")
    assert plan([desired()], [], {}, now=NOW).actions[0].taken_by is None


def test_a_marker_followed_by_a_newline_is_not_ours() -> None:
    assert owner_key("[provisioner:api/ingest]\n") is None
    assert owner_key("text [provisioner:api/ingest]\n") is None
    assert owner_key("text [provisioner:api/ingest]") == "api/ingest"


def test_only_a_young_credential_no_sink_holds_is_a_killed_runs_leftover() -> None:
    wanted = desired(sinks=("files",))
    young, old = dated("c1", timedelta(minutes=2)), dated("c1", timedelta(days=2))
    nothing = {"api/ingest": {"files": None}}
    (fresh,) = plan([wanted], [young], nothing, now=NOW).actions
    (in_use,) = plan([wanted], [old], nothing, now=NOW).actions
    assert (fresh.kind, fresh.leftover) == (Kind.REPLACE, True)
    assert (in_use.kind, in_use.leftover) == (Kind.REPLACE, False)
    write_only = desired(sinks=("files", "stdout"))  # a write-only sink holds what is live
    (held,) = plan([write_only], [young], nothing, now=NOW).actions
    assert held.leftover is False


def test_a_lost_sink_is_restored_while_a_replace_waits_for_another_grace() -> None:
    wanted = desired(sinks=("files", "dotenv"), service_id="svc-x", grace=timedelta(hours=1))
    world = [dated("c1", timedelta(minutes=30)), dated("c2", timedelta(minutes=10))]
    held = {"api/ingest": {"files": None, "dotenv": "c2"}}
    first, other = plan([wanted], world, held, now=NOW).actions
    assert (first.kind, first.client_id, first.targets) == (Kind.RESTORE, "c2", ("files",))
    assert (other.reason, other.client_id) == (Reason.IN_GRACE, "c1")
