"""`--replace KEY`: the planner replaces exactly the keys it is given, honouring grace."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from provisioner.model import Kind, Reason, RemoteCredential, marked_description
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
