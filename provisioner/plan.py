"""Reconciliation rules as one pure function: (desired, observed, now) -> actions. No I/O here."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from provisioner.gcpause import gc_paused
from provisioner.model import DesiredCredential, RemoteCredential


class Kind(StrEnum):
    CREATE = "create"
    REPLACE = "replace"
    DELETE = "delete"
    NOOP = "noop"
    ORPHAN = "orphan"  # marked, in no manifest, kept because --prune was not given


class Reason(StrEnum):
    MISSING = "missing"
    LOST_SECRET = "lost-secret"
    DRIFT_ROLES = "drift:roles"
    DRIFT_PERMISSIONS = "drift:permissions"
    DRIFT_SERVICE_ID = "drift:service_id"
    ROTATION = "rotation"
    DUPLICATE = "duplicate"
    SUPERSEDED = "superseded"
    ORPHAN = "orphan"
    IN_GRACE = "in-grace"  # an old credential left live until the new one is older than grace
    UP_TO_DATE = "up-to-date"


@dataclass(frozen=True, slots=True)
class Action:
    """One step of a plan. `client_id` is the existing credential it concerns, if any."""

    kind: Kind
    key: str
    reason: Reason
    desired: DesiredCredential | None = None
    client_id: str | None = None
    # For replace: old credentials to delete once the new one is delivered (empty under grace).
    retire: tuple[str, ...] = ()

    @property
    def writes(self) -> bool:
        return self.kind in {Kind.CREATE, Kind.REPLACE, Kind.DELETE}


@dataclass(frozen=True, slots=True)
class Plan:
    actions: tuple[Action, ...]
    counts: Mapping[Kind, int] = field(default_factory=dict)

    @property
    def has_changes(self) -> bool:
        return any(action.writes for action in self.actions)


# What readable sinks hold: key -> sink name -> client_id (None when a sink holds nothing).
Holdings = Mapping[str, Mapping[str, str | None]]


@gc_paused()
def plan(
    desired: Sequence[DesiredCredential],
    remote: Iterable[RemoteCredential],
    holdings: Holdings,
    *,
    now: datetime,
    prune: bool = False,
) -> Plan:
    """Actions that converge the observed world to the desired one (DESIGN.md's rule table)."""
    by_key: dict[str, list[RemoteCredential]] = defaultdict(list)
    for credential in remote:
        key = credential.key
        if key is not None:  # unmarked credentials are never ours to touch
            by_key[key].append(credential)
    actions: list[Action] = []
    for wanted in desired:
        found = sorted(by_key.pop(wanted.key, ()), key=_age_order)
        actions.extend(_reconcile(wanted, found, holdings.get(wanted.key, {}), now))
    for key, leftovers in by_key.items():
        kind = Kind.DELETE if prune else Kind.ORPHAN
        actions.extend(Action(kind, key, Reason.ORPHAN, client_id=c.client_id) for c in leftovers)
    counts = Counter(action.kind for action in actions)
    return Plan(tuple(actions), dict(counts))


def _reconcile(
    wanted: DesiredCredential,
    found: list[RemoteCredential],
    held: Mapping[str, str | None],
    now: datetime,
) -> list[Action]:
    if not found:
        return [Action(Kind.CREATE, wanted.key, Reason.MISSING, desired=wanted)]
    current = _held_by_sinks(wanted, found, held)
    if current is None:
        retire = tuple(c.client_id for c in found) if not wanted.grace else ()
        return [Action(Kind.REPLACE, wanted.key, Reason.LOST_SECRET, wanted, None, retire)]
    actions = [_keep_or_replace(wanted, current, now)]
    reason = Reason.DUPLICATE if not wanted.grace else Reason.SUPERSEDED
    expired = _age(current, now) >= wanted.grace
    for other in found:
        if other is not current:
            kind, why = (Kind.DELETE, reason) if expired else (Kind.NOOP, Reason.IN_GRACE)
            actions.append(Action(kind, wanted.key, why, client_id=other.client_id))
    return actions


def _held_by_sinks(
    wanted: DesiredCredential, found: list[RemoteCredential], held: Mapping[str, str | None]
) -> RemoteCredential | None:
    """The credential every readable sink holds; the newest if no sink can be read."""
    readable = [held[name] for name in wanted.sinks if name in held]
    if not readable:
        return found[-1]
    for credential in found:
        if all(client_id == credential.client_id for client_id in readable):
            return credential
    return None


def _keep_or_replace(wanted: DesiredCredential, current: RemoteCredential, now: datetime) -> Action:
    reason = _drift(wanted, current)
    if reason is None and wanted.rotate_after and _age(current, now) >= wanted.rotate_after:
        reason = Reason.ROTATION
    if reason is None:
        return Action(Kind.NOOP, wanted.key, Reason.UP_TO_DATE, client_id=current.client_id)
    retire = (current.client_id,) if not wanted.grace else ()
    return Action(Kind.REPLACE, wanted.key, reason, wanted, current.client_id, retire)


def _drift(wanted: DesiredCredential, current: RemoteCredential) -> Reason | None:
    if current.role_ids != frozenset(wanted.role_ids):
        return Reason.DRIFT_ROLES
    permissions = current.permission_ids
    if permissions is not None and permissions != frozenset(wanted.permission_ids):
        return Reason.DRIFT_PERMISSIONS
    if (current.service_id or None) != wanted.service_id:
        return Reason.DRIFT_SERVICE_ID
    return None


def _age(credential: RemoteCredential, now: datetime) -> timedelta:
    """How old a credential is; unknown creation times count as brand new (never rotated)."""
    created = credential.created_at
    if created is None:
        return timedelta(0)
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    return now - created


def _age_order(credential: RemoteCredential) -> tuple[datetime, str]:
    created = credential.created_at or datetime.max.replace(tzinfo=UTC)
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    return created, credential.client_id
