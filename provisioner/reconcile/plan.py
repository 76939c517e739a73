"""Reconciliation rules as one pure function: (desired, observed, now) -> actions. No I/O here."""

from __future__ import annotations

import dataclasses
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from provisioner.manifest.durations import format_duration
from provisioner.model import (
    DEFAULT_OWNER,
    Action,
    CredentialKind,
    DesiredCredential,
    Holdings,
    Kind,
    Plan,
    Reason,
    RemoteCredential,
    State,
    split_owner,
)
from provisioner.reconcile.drifts import IN_PLACE, differences

FORCED_DETAIL = "--replace"
#: A credential no readable sink holds and younger than this is taken for what an interrupted run
#: (killed between create and delivery) left: no consumer ever had its secret, so ending it does
#: not spend the change budget, and a crashed run is repaired by the next one. Older, it may be
#: in use through a sink that is gone (a path pointed elsewhere): it counts.
LEFTOVER_AGE = timedelta(days=1)


def plan(
    desired: Sequence[DesiredCredential],
    remote: Iterable[RemoteCredential],
    holdings: Holdings,
    *,
    now: datetime,
    prune: bool = False,
    owner: str = DEFAULT_OWNER,
    replace: frozenset[str] = frozenset(),
    unproven: frozenset[str] = frozenset(),
    blocked: Mapping[str, str] | None = None,
) -> Plan:
    """Actions that converge the observed world to the desired one (DESIGN.md's rule table).

    Only `owner`'s marked credentials are planned; other owners' are counted, never touched.
    Keys in `replace` are replaced whatever their state (`--replace KEY`). A sink that lost a
    record is restored from a sibling sink, unless its key is in `unproven` (the copy's secret
    was refused by the API): then it is replaced. Keys in `blocked` (key -> why: a sink it
    names could not be read or written) are not planned: each gets one `blocked` action, and
    their remote credentials are neither changed nor orphans.
    """
    blocked = blocked or {}
    now = _aware(now)
    by_key: dict[str, list[RemoteCredential]] = defaultdict(list)
    unique: dict[tuple[CredentialKind, str], RemoteCredential] = {}
    for credential in remote:  # a credential listed twice is no duplicate of itself
        unique.setdefault(_identity(credential), credential)
    # A project key's API access, should the API list it among client credentials (with the
    # key's description, marker included), is the key's: never a credential of its own.
    key_clients = {c.api_client_id for c in unique.values() if c.kind is CredentialKind.PROJECT_KEY}
    unique = {
        identity: credential
        for identity, credential in unique.items()
        if credential.kind is CredentialKind.PROJECT_KEY or credential.client_id not in key_clients
    }
    failed_deletes: list[Action] = []
    for credential in unique.values():
        if credential.key is None:  # unmarked credentials are never ours to touch
            continue
        if credential.state is State.DELETING:  # on its way out: neither live nor an orphan
            continue
        if credential.state is State.DELETE_FAILED:
            their_owner, key = split_owner(credential.key)
            if their_owner == owner:
                failed_deletes.append(_delete_again(key, credential))
            continue
        by_key[credential.key].append(credential)
    taken = _taken(by_key, owner)
    actions: list[Action] = []
    for wanted in desired:
        marked = sorted(by_key.pop(wanted.owned_key, ()), key=_age_order)
        if wanted.key in blocked:
            actions.append(_blocked(wanted, marked, blocked[wanted.key]))
            continue
        found = [c for c in marked if c.kind is wanted.kind]
        held = holdings.get(wanted.key, {})
        forced, heal = wanted.key in replace, wanted.key not in unproven
        planned = _reconcile(wanted, found, held, now, forced=forced, heal=heal)
        if planned[0].kind is Kind.CREATE and wanted.key in taken:
            planned[0] = dataclasses.replace(planned[0], taken_by=taken[wanted.key])
        other_kind = [c for c in marked if c.kind is not wanted.kind]
        if other_kind:  # a lost create's recovery must not take a key's API client for its own
            clients = tuple(c.api_client_id for c in other_kind if c.api_client_id)
            planned[0] = dataclasses.replace(planned[0], known=planned[0].known + clients)
        actions.extend(_dated(action, now) for action in planned)
        actions.extend(_kind_changed(wanted, other_kind, found, planned[0], now, held))
    actions.extend(failed_deletes)
    others: Counter[str] = Counter()
    for qualified, leftovers in by_key.items():
        their_owner, key = split_owner(qualified)
        if their_owner != owner:
            others[their_owner] += len(leftovers)
            continue
        actions.extend(_orphan(key, credential, prune) for credential in leftovers)
    return Plan(
        tuple(_on_api(action) for action in actions),
        other_owners=tuple(sorted(others.items())),
    )


def _identity(credential: RemoteCredential) -> tuple[CredentialKind, str]:
    """A remote credential's identity: ids are only unique on their own API."""
    return credential.kind, credential.client_id


def _on_api(action: Action) -> Action:
    """The action with the API its credential lives on: the manifest's kind for what concerns a
    desired credential (a retired or orphaned one was given its own kind when planned)."""
    wanted = action.desired
    if wanted is None or wanted.kind is action.credential_kind:
        return action
    return dataclasses.replace(action, credential_kind=wanted.kind)


def _about(
    kind: Kind, key: str, reason: Reason, credential: RemoteCredential, detail: str, **more: Any
) -> Action:
    """An action about a remote credential no manifest entry stands for (an orphan, one
    superseded, one of the other kind): it carries the credential's id, age and API."""
    return Action(
        kind,
        key,
        reason,
        None,
        credential.client_id,
        detail=detail,
        created_at=credential.created_at,
        credential_kind=credential.kind,
        **more,
    )


def _delete_again(key: str, credential: RemoteCredential) -> Action:
    """A project key whose deletion failed: tried again each run, and reported, never kept."""
    detail = "an earlier delete ended delete_failed; deleting again"
    return _about(Kind.DELETE, key, Reason.DELETE_FAILED, credential, detail)


def _kind_changed(
    wanted: DesiredCredential,
    other_kind: Sequence[RemoteCredential],
    found: Sequence[RemoteCredential],
    first: Action,
    now: datetime,
    held: Mapping[str, str | None],
) -> list[Action]:
    """Credentials of the key on the other API (its manifest `kind:` changed): left live until
    one of the new kind is held by the sinks, then retired like a superseded one (grace)."""
    kept = next((c for c in found if c.client_id == first.client_id), None)
    settled = first.kind in (Kind.NOOP, Kind.UPDATE, Kind.RESTORE) and kept is not None
    actions = []
    for credential in other_kind:
        if not settled or kept is None:
            detail = f"its key is now a {wanted.kind}; deleted once that one is delivered"
            actions.append(_about(Kind.NOOP, wanted.key, Reason.DRIFT_KIND, credential, detail))
            continue
        retired = _other(wanted, credential, kept, now, held)
        if retired.kind is Kind.DELETE:
            retired = dataclasses.replace(retired, reason=Reason.DRIFT_KIND, leftover=False)
        actions.append(retired)
    return actions


def _taken(by_key: Mapping[str, Sequence[RemoteCredential]], owner: str) -> dict[str, str]:
    """Each key some other owner's marked credential has, and that owner (the first by name)."""
    taken: dict[str, str] = {}
    for qualified in sorted(by_key):
        their_owner, key = split_owner(qualified)
        if their_owner != owner:
            taken.setdefault(key, their_owner)
    return taken


def _blocked(wanted: DesiredCredential, found: Sequence[RemoteCredential], why: str) -> Action:
    """A credential left as it is this run: what to do cannot be known (or not be done)."""
    live = found[-1].client_id if found else None  # the newest, when several are live
    known = tuple(c.client_id for c in found)
    reason = Reason.SINK_ERROR
    return Action(Kind.BLOCKED, wanted.key, reason, wanted, live, known=known, detail=why)


def _dated(action: Action, now: datetime) -> Action:
    """When the credential an action leaves becomes due for rotation (where it rotates at all).

    A create or replace makes a new credential now; an update or restore keeps the live one.
    """
    wanted = action.desired
    if wanted is None or not wanted.rotate_after:
        return action
    if action.kind in (Kind.CREATE, Kind.REPLACE):
        born = now
    elif action.kind in (Kind.UPDATE, Kind.RESTORE) and action.created_at is not None:
        born = _aware(action.created_at)
    else:
        return action
    return dataclasses.replace(action, rotates_at=_plus(born, wanted.rotate_after))


def grace_of(wanted: DesiredCredential) -> timedelta:
    """The overlap actually granted: never longer than `rotate_after`.

    A grace at least as long as the rotation period would keep every superseded credential live
    forever (the kept one is rotated before it is ever older than grace).
    """
    if wanted.rotate_after:
        return min(wanted.grace, wanted.rotate_after)
    return wanted.grace


def _reconcile(
    wanted: DesiredCredential,
    found: list[RemoteCredential],
    held: Mapping[str, str | None],
    now: datetime,
    *,
    forced: bool = False,
    heal: bool = True,
) -> list[Action]:
    if not found:
        return [Action(Kind.CREATE, wanted.key, Reason.MISSING, wanted)]
    known = tuple(c.client_id for c in found)
    kept = _held_by_sinks(wanted, found, held)
    source = None
    if kept is None and heal:
        kept, source = _restorable(wanted, found, held)
    if kept is None:
        return [_replace_lost(wanted, found, held, known, now, forced=forced)]
    others = [_other(wanted, other, kept, now, held) for other in found if other is not kept]
    first = _keep_or_replace(wanted, kept, now, known, others, forced=forced)
    if first.kind is Kind.REPLACE and set(first.retire) & {o.client_id for o in others}:
        # A forced replace cuts the grace of the one in grace short: it is retired, not kept.
        others = [o for o in others if o.client_id not in first.retire]
    if source is not None and first.kind is Kind.UPDATE:
        # A sink lacks the record: an update in place would leave it without; a replace fills it.
        first = dataclasses.replace(first, kind=Kind.REPLACE)
    if first.kind is Kind.UPDATE:  # it refreshes the record each readable sink holds
        first = dataclasses.replace(first, targets=tuple(n for n in wanted.sinks if n in held))
    if source is not None and first.kind is Kind.NOOP:
        # Up to date, or a replace waiting for another's grace: the lost record comes back now
        # (and the restore says what waits, so no one mistakes the key for converged).
        waiting = first.detail if first.reason is not Reason.UP_TO_DATE else ""
        first = _restore(wanted, kept, source, held, known)
        if waiting:
            first = dataclasses.replace(first, detail=f"{first.detail}; then: {waiting}")
    elif source is not None and first.reason is Reason.ROTATION:
        # Should the budget defer the rotation, the lost record is still restored from source.
        targets = _targets(wanted, kept, held)
        first = dataclasses.replace(first, source=source, targets=targets)
    return [first, *others]


def _restorable(
    wanted: DesiredCredential, found: list[RemoteCredential], held: Mapping[str, str | None]
) -> tuple[RemoteCredential | None, str | None]:
    """The newest live credential, if a readable sink holds it, and the first sink holding it.

    Newest wins: a sink holding an older one (a backup restored from before a rotation, say)
    is stale, never a source; copying from it would bring back a superseded, maybe leaked,
    secret and delete the newer one as a duplicate. No sink holding the newest: (None, None),
    and the credential is replaced as for a lost secret.
    """
    newest = found[-1]
    holders = [name for name in wanted.sinks if name in held and held[name] == newest.client_id]
    return (newest, holders[0]) if holders else (None, None)


def _targets(
    wanted: DesiredCredential, kept: RemoteCredential, held: Mapping[str, str | None]
) -> tuple[str, ...]:
    """The readable sinks that lack the kept credential's record (nothing, or a stale one)."""
    return tuple(n for n in wanted.sinks if n in held and held[n] != kept.client_id)


def _restore(
    wanted: DesiredCredential,
    kept: RemoteCredential,
    source: str,
    held: Mapping[str, str | None],
    known: tuple[str, ...],
) -> Action:
    """Copy the live credential's record from `source` to the readable sinks that lack it."""
    targets = _targets(wanted, kept, held)
    misses = "; ".join(f"{name} holds {held[name] or 'nothing'}" for name in targets)
    return Action(
        Kind.RESTORE,
        wanted.key,
        Reason.LOST_SECRET,
        wanted,
        client_id=kept.client_id,
        known=known,
        detail=f"copy from {source}; {misses}",
        created_at=kept.created_at,
        source=source,
        targets=targets,
    )


def _held_by_sinks(
    wanted: DesiredCredential, found: list[RemoteCredential], held: Mapping[str, str | None]
) -> RemoteCredential | None:
    """The credential every readable sink holds; the newest if no sink can be read."""
    readable = [held[name] for name in wanted.sinks if name in held]
    if not readable:
        return found[-1]
    return next((c for c in found if all(cid == c.client_id for cid in readable)), None)


def _replace_lost(
    wanted: DesiredCredential,
    found: list[RemoteCredential],
    held: Mapping[str, str | None],
    known: tuple[str, ...],
    now: datetime,
    *,
    forced: bool = False,
) -> Action:
    """No credential is held by every readable sink: a new one, delivered everywhere."""
    current = found[-1]
    misses = [
        f"{name} holds {held[name] or 'nothing'}"
        for name in wanted.sinks
        if name in held and held[name] != current.client_id
    ]
    # Under grace the newest stays live beside the new one; older ones (already superseded) go
    # once it is delivered: at most two per key. No sink holds a secret, so this cannot wait.
    retire = known[:-1] if grace_of(wanted) else known
    return Action(
        Kind.REPLACE,
        wanted.key,
        Reason.FORCED if forced else Reason.LOST_SECRET,
        wanted,
        client_id=current.client_id,
        retire=retire,
        known=known,
        detail="; ".join([FORCED_DETAIL] * forced + misses),
        created_at=current.created_at,
        leftover=not forced and all(_leftover(c, now, held, wanted) for c in found),
    )


def _keep_or_replace(
    wanted: DesiredCredential,
    kept: RemoteCredential,
    now: datetime,
    known: tuple[str, ...],
    others: Sequence[Action],
    *,
    forced: bool = False,
) -> Action:
    rotation = _rotation(wanted, kept, now)
    drifts = [
        *filter(None, [_forced(forced)]),
        *differences(wanted, kept),
        *filter(None, [rotation]),
    ]
    if not drifts and kept.state is State.CREATING:
        detail = "still creating (its Kafka access is being set up); the next run looks again"
        return Action(
            Kind.NOOP,
            wanted.key,
            Reason.ACTIVATING,
            wanted,
            kept.client_id,
            known=known,
            detail=detail,
        )
    if not drifts:
        return Action(Kind.NOOP, wanted.key, Reason.UP_TO_DATE, wanted, kept.client_id, known=known)
    reason, detail = drifts[0]
    in_grace = [other for other in others if other.kind is Kind.NOOP]
    if in_grace and forced:
        return _forced_over_grace(wanted, kept, known, in_grace)
    if in_grace:  # (only with a grace: without one, the others are deleted this run)
        return _wait_for_others(wanted, kept, reason, detail, in_grace)
    # Some drifts change in place, keeping ids and secrets (for client credentials the roles
    # alone, and the engine replaces instead if the API has no PATCH); any other needs a new one.
    in_place = all(drift in IN_PLACE[wanted.kind] for drift, _ in drifts)
    if wanted.kind is CredentialKind.CLIENT_CREDENTIAL:
        in_place = in_place and bool(wanted.role_ids)
    else:  # every reason a key changes for, most telling first
        detail = "; ".join(text for _, text in drifts)
    kind = Kind.UPDATE if in_place else Kind.REPLACE
    retire = () if grace_of(wanted) else (kept.client_id,)
    return Action(
        kind,
        wanted.key,
        reason,
        wanted,
        client_id=kept.client_id,
        retire=retire,
        known=known,
        detail=detail,
        created_at=kept.created_at,
    )


def _forced_over_grace(
    wanted: DesiredCredential,
    kept: RemoteCredential,
    known: tuple[str, ...],
    in_grace: Sequence[Action],
) -> Action:
    """`--replace KEY` while an earlier replacement is in grace: asked for now (a leak), so
    done now. The one in grace is deleted once the new one is delivered, cutting its grace
    short: at most two live per key, the kept one keeping its own grace beside the new one."""
    ids = tuple(other.client_id for other in in_grace if other.client_id)
    detail = f"{FORCED_DETAIL}; cuts the grace of {' and '.join(ids)} short: at most two live"
    return Action(
        Kind.REPLACE,
        wanted.key,
        Reason.FORCED,
        wanted,
        client_id=kept.client_id,
        retire=ids,
        known=known,
        detail=detail,
        created_at=kept.created_at,
    )


def _wait_for_others(
    wanted: DesiredCredential,
    kept: RemoteCredential,
    reason: Reason,
    detail: str,
    others: Sequence[Action],
) -> Action:
    """A replace while another credential of the key is still in grace would make three live.

    It waits, left in place, until that grace ends: the kept one still works for every consumer
    meanwhile, and the one in grace keeps working for those that have not restarted yet.
    """
    ids = " and ".join(other.client_id or "?" for other in others)
    detail = f"{detail}; waits for the grace of {ids} to end: at most two live per key"
    return Action(Kind.NOOP, wanted.key, reason, wanted, kept.client_id, detail=detail)


def _other(
    wanted: DesiredCredential,
    other: RemoteCredential,
    kept: RemoteCredential,
    now: datetime,
    held: Mapping[str, str | None],
) -> Action:
    """A second marked credential for a key: deleted once the kept one is older than grace."""
    reason = Reason.SUPERSEDED if _age_order(other) < _age_order(kept) else Reason.DUPLICATE
    grace = grace_of(wanted)
    # An undated kept credential cannot be said to be young: it holds nothing in grace.
    if not grace or kept.created_at is None or _age(kept, now) >= grace:
        if reason is Reason.SUPERSEDED and (in_use := _in_use(wanted, other, kept, now)):
            return in_use
        detail = f"the sinks hold {kept.client_id}"
        leftover = _leftover(other, now, held, wanted)
        return Action(
            Kind.DELETE,
            wanted.key,
            reason,
            None,
            other.client_id,
            detail=detail,
            leftover=leftover,
            credential_kind=other.kind,
        )
    until = _when(_plus(kept.created_at, grace))
    detail = f"the sinks hold {kept.client_id}; grace {format_duration(grace)} ends {until}"
    return Action(
        Kind.NOOP,
        wanted.key,
        Reason.IN_GRACE,
        None,
        other.client_id,
        detail=detail,
        credential_kind=other.kind,
    )


def _in_use(
    wanted: DesiredCredential, old: RemoteCredential, kept: RemoteCredential, now: datetime
) -> Action | None:
    """A superseded credential past its grace that some consumer still uses: kept, and
    reported, until `grace_max` ends.

    Still used = used after its successor was made, and within the last `grace` (the time a
    consumer is given to move: one that has moved stops using it, and a grace later it goes).
    None (delete it) without `grace_max`, when the API does not say when it was used, when it
    is not still used, or once `grace_max` has run out.
    """
    if wanted.grace_max is None or old.last_used_at is None or kept.created_at is None:
        return None
    used = _aware(old.last_used_at)
    if used <= _aware(kept.created_at) or now - used >= grace_of(wanted):
        return None
    if _age(kept, now) >= wanted.grace_max:
        return None
    until = _when(_plus(kept.created_at, wanted.grace_max))
    detail = (
        f"the sinks hold {kept.client_id}, but it was used at {_when(used)}, after that one "
        f"was made; kept until unused for {format_duration(grace_of(wanted))} (grace), at most "
        f"until {until} (grace_max {format_duration(wanted.grace_max)})"
    )
    return Action(
        Kind.NOOP,
        wanted.key,
        Reason.IN_USE,
        None,
        old.client_id,
        detail=detail,
        credential_kind=old.kind,
    )


def _leftover(
    credential: RemoteCredential,
    now: datetime,
    held: Mapping[str, str | None],
    wanted: DesiredCredential,
) -> bool:
    """Young, dated, and no sink holds it (a write-only sink counts as holding what is live)."""
    if credential.created_at is None or any(n not in held for n in wanted.sinks):
        return False
    return credential.client_id not in held.values() and _age(credential, now) < LEFTOVER_AGE


def _orphan(key: str, credential: RemoteCredential, prune: bool) -> Action:
    kind = Kind.DELETE if prune else Kind.NOOP
    detail = "in no manifest" if prune else "in no manifest; --prune deletes it"
    return _about(kind, key, Reason.ORPHAN, credential, detail)


def _forced(forced: bool) -> tuple[Reason, str] | None:
    return (Reason.FORCED, FORCED_DETAIL) if forced else None


def _rotation(
    wanted: DesiredCredential, current: RemoteCredential, now: datetime
) -> tuple[Reason, str] | None:
    # A rotate_after of zero means "never": rotating on every run would be churn, not rotation.
    if not wanted.rotate_after or _age(current, now) < wanted.rotate_after:
        return None
    age = format_duration(_age(current, now))
    return Reason.ROTATION, f"{age} old, rotate_after {format_duration(wanted.rotate_after)}"


def _age(credential: RemoteCredential, now: datetime) -> timedelta:
    """How old a credential is; unknown creation times count as brand new (never rotated)."""
    if credential.created_at is None:
        return timedelta(0)
    return now - _aware(credential.created_at)


def _age_order(credential: RemoteCredential) -> tuple[datetime, str]:
    """Oldest first. Undated ones sort first, so a credential just created is the newest."""
    created = credential.created_at or datetime.min
    return _aware(created), credential.client_id


def _plus(moment: datetime, delta: timedelta) -> datetime:
    """`moment + delta`, clamped to the last representable moment: an API may date a
    credential in year 9999, and adding a period to it must not end the run."""
    try:
        return _aware(moment) + delta
    except OverflowError:
        return datetime.max.replace(tzinfo=UTC)


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _when(moment: datetime) -> str:
    return _aware(moment).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
