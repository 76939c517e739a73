"""The reconciliation rule table, one rule per test, without any I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from provisioner.model import DesiredCredential, Origin, RemoteCredential, marked_description
from provisioner.plan import Kind, Plan, Reason, plan

NOW = datetime(2026, 11, 1, tzinfo=UTC)
ORIGIN = Origin("m.yaml", 0, ())


def desired(
    name: str = "ingest",
    *,
    roles: tuple[str, ...] = ("r1",),
    sinks: tuple[str, ...] = ("local",),
    rotate_after: timedelta | None = None,
    grace: timedelta = timedelta(0),
    service_id: str | None = None,
) -> DesiredCredential:
    return DesiredCredential(
        service="api",
        name=name,
        description=None,
        service_id=service_id,
        roles=roles,
        permission_ids=(),
        sinks=sinks,
        rotate_after=rotate_after,
        grace=grace,
        origin=ORIGIN,
        roles_origin=ORIGIN,
        role_ids=roles,
    )


def remote(
    client_id: str,
    key: str | None = "api/ingest",
    *,
    roles: frozenset[str] = frozenset({"r1"}),
    age: timedelta = timedelta(days=1),
    service_id: str | None = None,
) -> RemoteCredential:
    return RemoteCredential(
        client_id=client_id,
        description=marked_description(None, key) if key else "made by hand",
        role_ids=roles,
        service_id=service_id,
        created_at=NOW - age,
        permission_ids=frozenset(),
    )


def kinds(result: Plan) -> list[tuple[Kind, Reason]]:
    return [(a.kind, a.reason) for a in result.actions]


def test_missing_credential_is_created() -> None:
    result = plan([desired()], [], {}, now=NOW)
    assert kinds(result) == [(Kind.CREATE, Reason.MISSING)]


def test_credential_held_by_its_sinks_is_left_alone() -> None:
    result = plan([desired()], [remote("c1")], {"api/ingest": {"local": "c1"}}, now=NOW)
    assert kinds(result) == [(Kind.NOOP, Reason.UP_TO_DATE)]
    assert not result.has_changes


def test_a_sink_that_lost_the_secret_causes_a_replace() -> None:
    result = plan([desired()], [remote("c1")], {"api/ingest": {"local": None}}, now=NOW)
    (action,) = result.actions
    assert (action.kind, action.reason, action.retire) == (
        Kind.REPLACE,
        Reason.LOST_SECRET,
        ("c1",),
    )


def test_role_drift_causes_a_replace() -> None:
    current = remote("c1", roles=frozenset({"r2"}))
    result = plan([desired()], [current], {"api/ingest": {"local": "c1"}}, now=NOW)
    assert kinds(result) == [(Kind.REPLACE, Reason.DRIFT_ROLES)]


def test_service_id_drift_causes_a_replace() -> None:
    result = plan(
        [desired(service_id="svc-2")], [remote("c1")], {"api/ingest": {"local": "c1"}}, now=NOW
    )
    assert kinds(result) == [(Kind.REPLACE, Reason.DRIFT_SERVICE_ID)]


def test_old_credential_is_rotated() -> None:
    wanted = desired(rotate_after=timedelta(days=30))
    old = remote("c1", age=timedelta(days=31))
    result = plan([wanted], [old], {"api/ingest": {"local": "c1"}}, now=NOW)
    assert kinds(result) == [(Kind.REPLACE, Reason.ROTATION)]


def test_replace_with_grace_leaves_the_old_credential_live() -> None:
    wanted = desired(rotate_after=timedelta(days=30), grace=timedelta(hours=1))
    result = plan(
        [wanted], [remote("c1", age=timedelta(days=31))], {"api/ingest": {"local": "c1"}}, now=NOW
    )
    (action,) = result.actions
    assert action.kind is Kind.REPLACE
    assert action.retire == ()


def test_duplicates_keep_the_one_the_sinks_hold() -> None:
    found = [remote("c1", age=timedelta(days=2)), remote("c2")]
    result = plan([desired()], found, {"api/ingest": {"local": "c1"}}, now=NOW)
    assert [(a.kind, a.client_id) for a in result.actions] == [
        (Kind.NOOP, "c1"),
        (Kind.DELETE, "c2"),
    ]


def test_superseded_credential_waits_out_the_grace_period() -> None:
    wanted = desired(grace=timedelta(hours=1))
    young = [remote("old", age=timedelta(days=2)), remote("new", age=timedelta(minutes=5))]
    held = {"api/ingest": {"local": "new"}}
    assert kinds(plan([wanted], young, held, now=NOW))[1] == (Kind.NOOP, Reason.IN_GRACE)
    later = NOW + timedelta(hours=2)
    assert kinds(plan([wanted], young, held, now=later))[1] == (Kind.DELETE, Reason.SUPERSEDED)


def test_orphans_are_reported_and_deleted_only_with_prune() -> None:
    orphan = remote("c9", key="gone/away")
    assert kinds(plan([], [orphan], {}, now=NOW)) == [(Kind.ORPHAN, Reason.ORPHAN)]
    assert kinds(plan([], [orphan], {}, now=NOW, prune=True)) == [(Kind.DELETE, Reason.ORPHAN)]


def test_unmarked_credentials_never_appear_in_actions() -> None:
    result = plan([desired()], [remote("hand", key=None)], {}, now=NOW, prune=True)
    assert all(a.client_id != "hand" for a in result.actions)


def test_write_only_sinks_count_as_holding_whatever_is_live() -> None:
    result = plan([desired(sinks=("stdout",))], [remote("c1")], {"api/ingest": {}}, now=NOW)
    assert kinds(result) == [(Kind.NOOP, Reason.UP_TO_DATE)]
