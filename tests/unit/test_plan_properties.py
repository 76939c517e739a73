"""Properties of the planner over random worlds: one apply converges, a converged world is quiet."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from provisioner.model import (
    Action,
    DesiredCredential,
    Kind,
    Origin,
    Reason,
    RemoteCredential,
    marked_description,
)
from provisioner.reconcile.plan import _age_order, grace_of
from tests.support.plan_world import READABLE, WRITE_ONLY, World

NOW = datetime(2026, 11, 1, tzinfo=UTC)
ORIGIN = Origin("m.yaml", 0, ())
KEYS = ("api/ingest", "api/report", "web/app")
ORPHAN_KEYS = ("gone/old",)
ROLES = ("r1", "r2")
GRACES = (timedelta(0), timedelta(hours=1), timedelta(days=1))
ROTATIONS = (None, timedelta(days=30), timedelta(days=90))
# Never 0: a credential created by the run under test is always strictly the newest.
AGES = (timedelta(minutes=1), timedelta(hours=2), timedelta(days=2), timedelta(days=45))
PAST_EVERY_GRACE = max(GRACES) + timedelta(seconds=1)
UNMARKED = (None, "made by hand", "[provisioner:api/ingest] copy", "x[provisioner:api/ingest]")

SETTINGS = settings(max_examples=100, deadline=None)


def subset(values: tuple[str, ...]) -> st.SearchStrategy[tuple[str, ...]]:
    return st.lists(st.sampled_from(values), unique=True).map(tuple)


@st.composite
def desired_credential(draw: st.DrawFn, key: str) -> DesiredCredential:
    service, name = key.split("/")
    roles = draw(subset(ROLES))
    sinks = draw(st.lists(st.sampled_from(READABLE + WRITE_ONLY), min_size=1, unique=True))
    return DesiredCredential(
        service=service,
        name=name,
        description=draw(st.sampled_from([None, "some text"])),
        service_id=draw(st.sampled_from([None, "svc-1"])),
        roles=roles,
        permission_ids=draw(subset(("p1",))),
        sinks=tuple(sinks),
        rotate_after=draw(st.sampled_from(ROTATIONS)),
        grace=draw(st.sampled_from(GRACES)),
        origin=ORIGIN,
        roles_origin=ORIGIN,
        role_ids=roles,
    )


@st.composite
def desired_set(draw: st.DrawFn) -> list[DesiredCredential]:
    keys = draw(st.lists(st.sampled_from(KEYS), unique=True))
    return [draw(desired_credential(key)) for key in keys]


@st.composite
def remote_credential(draw: st.DrawFn, client_id: str) -> RemoteCredential:
    key = draw(st.sampled_from(KEYS + ORPHAN_KEYS))
    marked = st.sampled_from([marked_description(None, key), marked_description("text", key)])
    description = draw(st.one_of(marked, marked, st.sampled_from(UNMARKED)))
    age = draw(st.sampled_from((*AGES, None)))
    permissions = draw(st.sampled_from([None, frozenset(), frozenset({"p1"})]))
    return RemoteCredential(
        client_id=client_id,
        description=description,
        role_ids=frozenset(draw(subset(ROLES))),
        service_id=draw(st.sampled_from([None, "svc-1"])),
        created_at=None if age is None else NOW - age,
        permission_ids=permissions,
    )


@st.composite
def worlds(draw: st.DrawFn) -> World:
    count = draw(st.integers(0, 8))
    remote = {f"c{i}": draw(remote_credential(f"c{i}")) for i in range(count)}
    stored: dict[tuple[str, str], str] = {}
    for key in KEYS:
        ids = [c.client_id for c in remote.values() if c.key == key]
        for sink in READABLE:
            held = draw(st.sampled_from([None, "stale", *ids]))
            if held is not None:
                stored[key, sink] = held
    return World(remote, stored, NOW)


def current_of(world: World, wanted: DesiredCredential) -> RemoteCredential:
    """The one credential the sinks hold (the newest when no sink can be read back)."""
    marked = world.marked(wanted.key)
    readable = [s for s in wanted.sinks if s in READABLE]
    if not readable:
        return max(marked, key=_age_order)
    (held,) = {world.stored.get((wanted.key, s)) for s in readable}
    assert held is not None
    return world.remote[held]


def assert_desired_state(world: World, wanted: DesiredCredential, *, grace_left: bool) -> None:
    current = current_of(world, wanted)
    assert current.role_ids == frozenset(wanted.role_ids)
    assert current.permission_ids in (None, frozenset(wanted.permission_ids))
    # A service_id the manifest does not name is the API's to fill in (computed).
    assert wanted.service_id is None or current.service_id == wanted.service_id
    if wanted.rotate_after and current.created_at is not None:
        assert world.now - current.created_at < wanted.rotate_after
    others = [c for c in world.marked(wanted.key) if c is not current]
    assert not others or (grace_left and grace_of(wanted) > timedelta(0))


def assert_converged(
    world: World,
    desired: list[DesiredCredential],
    before: dict[str, RemoteCredential],
    *,
    prune: bool,
    grace_left: bool,
    wanted_keys: set[str] | None = None,
) -> None:
    """`desired` are checked for their state; keys outside `wanted_keys` (default: theirs) are
    orphans."""
    for wanted in desired:
        assert_desired_state(world, wanted, grace_left=grace_left)
    wanted_keys = wanted_keys if wanted_keys is not None else {d.key for d in desired}
    for client_id, credential in before.items():
        if credential.key is None:
            assert world.remote[client_id] == credential  # unmanaged: untouched
        elif credential.key not in wanted_keys:
            assert (client_id in world.remote) is not prune  # orphan: kept unless --prune
    strays = {c.key for c in world.remote.values() if c.key and c.key not in wanted_keys}
    assert not (prune and strays)


def only_noops(world: World, desired: list[DesiredCredential], prune: bool) -> bool:
    return all(a.kind is Kind.NOOP for a in world.plan(desired, prune=prune).actions)


@SETTINGS
@given(desired=desired_set(), world=worlds(), prune=st.booleans())
def test_one_apply_converges_and_grace_runs_out(
    desired: list[DesiredCredential], world: World, prune: bool
) -> None:
    """Apply, then (time passing beyond every grace) apply again: one credential per key.

    A replace that waits for another credential's grace (it would make three live) takes one
    more grace: it goes ahead on the second apply, and its old credential goes on the third.
    """
    before = dict(world.remote)
    first = world.plan(desired, prune=prune)
    waiting = {a.key for a in first.actions if a.kind in (Kind.NOOP, Kind.RESTORE) and waits(a)}
    world.execute(first)
    converged = [d for d in desired if d.key not in waiting]
    keys = {d.key for d in desired}
    assert_converged(world, converged, before, prune=prune, grace_left=True, wanted_keys=keys)
    assert only_noops(world, desired, prune)

    world.now += PAST_EVERY_GRACE
    later = world.plan(desired, prune=prune)
    assert {a.key for a in later.actions if a.kind is Kind.REPLACE} <= waiting
    world.execute(later)
    if waiting:
        world.now += PAST_EVERY_GRACE
        world.execute(world.plan(desired, prune=prune))
    assert_converged(world, desired, before, prune=prune, grace_left=False)
    assert only_noops(world, desired, prune)


def waits(action: Action) -> bool:
    """A replace the planner holds back while another credential of its key is in grace (a
    restore of a lost record may come first: it says what waits after it)."""
    if action.kind is Kind.RESTORE:
        return "waits for the grace of" in action.detail
    return action.desired is not None and action.reason is not Reason.UP_TO_DATE


@SETTINGS
@given(desired=desired_set(), world=worlds(), prune=st.booleans())
def test_unmanaged_credentials_never_appear_in_an_action(
    desired: list[DesiredCredential], world: World, prune: bool
) -> None:
    unmanaged = {cid for cid, c in world.remote.items() if c.key is None}
    for action in world.plan(desired, prune=prune).actions:
        assert not unmanaged & {action.client_id, *action.retire, *action.known}


@SETTINGS
@given(
    wanted=desired_credential("api/ingest"),
    rotate_after=st.sampled_from([timedelta(hours=1), timedelta(hours=2)]),
    grace=st.sampled_from([timedelta(minutes=20), timedelta(hours=1), timedelta(days=1)]),
    interval=st.sampled_from([timedelta(minutes=10), timedelta(minutes=35), timedelta(hours=3)]),
)
def test_scheduled_rotation_overlaps_without_piling_up(
    wanted: DesiredCredential, rotate_after: timedelta, grace: timedelta, interval: timedelta
) -> None:
    """Run after run: what the sinks held stays live through the run; never more than two."""
    wanted = dataclasses.replace(wanted, rotate_after=rotate_after, grace=grace)
    world = World({}, {}, NOW)
    for _ in range(40):
        held_before = {cid for (key, _s), cid in world.stored.items() if key == wanted.key}
        world.execute(world.plan([wanted], prune=False))
        assert len(world.marked(wanted.key)) <= 2
        assert held_before <= set(world.remote)  # grace > 0: no gap for any consumer
        assert_desired_state(world, wanted, grace_left=True)
        world.now += interval


@SETTINGS
@given(
    wanted=desired_credential("api/ingest"),
    grace=st.sampled_from([timedelta(minutes=20), timedelta(hours=1), timedelta(days=1)]),
    interval=st.sampled_from([timedelta(minutes=10), timedelta(minutes=35), timedelta(hours=3)]),
    drifts=st.lists(st.booleans(), min_size=1, max_size=30),
)
def test_an_api_that_keeps_drifting_never_gets_a_third_live_credential(
    wanted: DesiredCredential, grace: timedelta, interval: timedelta, drifts: list[bool]
) -> None:
    """Run after run the API answers roles that read as drift: at most two live, no gap."""
    wanted = dataclasses.replace(wanted, grace=grace, rotate_after=None)
    world = World({}, {}, NOW)
    world.execute(world.plan([wanted], prune=False))
    for drift in drifts:
        world.now += interval
        if drift:  # what the API lists for every credential of the key no longer matches
            for client_id, credential in list(world.remote.items()):
                drifted = credential.role_ids ^ {"drifted"}
                world.remote[client_id] = dataclasses.replace(credential, role_ids=drifted)
        held_before = {cid for (key, _s), cid in world.stored.items() if key == wanted.key}
        world.execute(world.plan([wanted], prune=False))
        assert 1 <= len(world.marked(wanted.key)) <= 2
        assert held_before <= set(world.remote)  # what consumers read last still works
