"""Plain data passed between stages: what is desired, observed, planned, created and done.

Every stage imports its inputs and outputs from here, never from the stage that makes them.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import SecretStr

from provisioner.errors import SinkError

# `\Z`, not `$`: `$` also matches before a trailing newline, and such a marker is not at the end.
_MARKER = re.compile(r"(?:^|(?<= ))\[provisioner:([^\[\]]+)\]\Z")

#: The owner of manifests that name none; its marker has no owner part, as before owners existed.
DEFAULT_OWNER = "default"


def owned_key(owner: str, key: str) -> str:
    """What a marker holds: the key, prefixed by the owner unless it is the default one."""
    return key if owner == DEFAULT_OWNER else f"{owner}:{key}"


def marker(key: str, owner: str = DEFAULT_OWNER) -> str:
    """The ownership marker that ends the description of every credential we manage."""
    return f"[provisioner:{owned_key(owner, key)}]"


#: The longest description the API is taken to keep, marker included: longer ones lose their end,
#: and with it the marker. Streamkap does not document a cap, nor does the simulator enforce
#: one; this is the bound the manifest format has always had (docs/limits.md).
MAX_DESCRIPTION = 1024


def marked_description(description: str | None, key: str, owner: str = DEFAULT_OWNER) -> str:
    """The description to send on create: the manifest's text, then the marker."""
    mark = marker(key, owner)
    return f"{description} {mark}" if description else mark


def owner_key(description: str | None) -> str | None:
    """The owner-qualified key a remote description marks as ours (see `owned_key`), or None."""
    if not description:
        return None
    found = _MARKER.search(description)
    return found.group(1) if found else None


def split_owner(qualified: str) -> tuple[str, str]:
    """(owner, key) of an owner-qualified key; owner and key names never hold a colon."""
    owner, colon, key = qualified.partition(":")
    return (owner, key) if colon else (DEFAULT_OWNER, qualified)


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a value came from: a file, the YAML document in it, and the field path."""

    file: str
    doc: int
    path: tuple[str | int, ...]

    def child(self, *parts: str | int) -> Origin:
        return Origin(self.file, self.doc, self.path + parts)

    @property
    def dotted(self) -> str:
        out = ""
        for part in self.path:
            out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
        return out


@dataclass(frozen=True, slots=True)
class DesiredCredential:
    """One credential a manifest asks for, with defaults applied."""

    service: str
    name: str
    description: str | None
    service_id: str | None
    roles: tuple[str, ...]  # as written: role keys, names or ids
    permission_ids: tuple[str, ...]
    sinks: tuple[str, ...]
    rotate_after: timedelta | None
    grace: timedelta
    origin: Origin
    roles_origin: Origin
    role_ids: tuple[str, ...] = ()  # filled in once roles are resolved
    role_names: tuple[str, ...] = ()  # the resolved roles' names, as the API lists them
    owner: str = DEFAULT_OWNER

    @property
    def key(self) -> str:
        return f"{self.service}/{self.name}"

    @property
    def owned_key(self) -> str:
        """The key as this credential's marker holds it: what `RemoteCredential.key` matches."""
        return owned_key(self.owner, self.key)

    @property
    def remote_description(self) -> str:
        return marked_description(self.description, self.key, self.owner)


@dataclass(frozen=True, slots=True)
class RemoteCredential:
    """A client credential as the API lists it (never with its secret)."""

    client_id: str
    description: str | None
    role_ids: frozenset[str]
    service_id: str | None
    created_at: datetime | None
    permission_ids: frozenset[str] | None = None  # None: the API did not say

    @property
    def key(self) -> str | None:
        """The owner-qualified key its marker holds (`team:svc/cred`; `svc/cred` for "default")."""
        return owner_key(self.description)


@dataclass(frozen=True, slots=True)
class CreatedCredential:
    """A credential just created: the only moment its secret is known."""

    remote: RemoteCredential
    secret: SecretStr = field(repr=False)


@dataclass(frozen=True, slots=True)
class SinkRecord:
    """What a sink stores for one credential; the layout of the file and Vault sinks."""

    service: str
    credential: str
    client_id: str
    secret: SecretStr = field(repr=False)
    description: str | None = None
    role_ids: tuple[str, ...] = ()
    permission_ids: tuple[str, ...] = ()
    service_id: str | None = None
    created_at: str | None = None

    @property
    def key(self) -> str:
        return f"{self.service}/{self.credential}"

    def to_document(self) -> dict[str, object]:
        """The stored JSON object, secret unwrapped: call only inside a sink's write."""
        return {
            "client_id": self.client_id,
            "secret": self.secret.get_secret_value(),
            "service": self.service,
            "credential": self.credential,
            "description": self.description,
            "role_ids": list(self.role_ids),
            "permission_ids": list(self.permission_ids),
            "service_id": self.service_id,
            "created_at": self.created_at,
        }

    @classmethod
    def from_document(cls, document: object) -> SinkRecord | None:
        """A stored JSON object read back; None unless it holds a client_id and a secret."""
        if not isinstance(document, dict):
            return None
        client_id, secret = document.get("client_id"), document.get("secret")
        service, credential = document.get("service"), document.get("credential")
        if not all(isinstance(v, str) and v for v in (client_id, secret, service, credential)):
            return None
        optional = {name: document.get(name) for name in ("description", "service_id")}
        return cls(
            service=str(service),
            credential=str(credential),
            client_id=str(client_id),
            secret=SecretStr(str(secret)),
            description=_text(optional["description"]),
            role_ids=_texts(document.get("role_ids")),
            permission_ids=_texts(document.get("permission_ids")),
            service_id=_text(optional["service_id"]),
            created_at=_text(document.get("created_at")),
        )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _texts(value: object) -> tuple[str, ...]:
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()


@dataclass(frozen=True, slots=True)
class Role:
    """A role as `GET /auth/roles` lists it."""

    id: str
    key: str
    name: str


class Kind(StrEnum):
    CREATE = "create"
    UPDATE = "update"  # roles changed in place (PATCH): client_id and secret kept
    REPLACE = "replace"
    RESTORE = "restore"  # copy the live credential's record from one sink to those that lack it
    DELETE = "delete"
    NOOP = "noop"
    # Not planned: a sink it names could not be read or written this run. Nothing is done.
    BLOCKED = "blocked"


class Reason(StrEnum):
    MISSING = "missing"
    LOST_SECRET = "lost-secret"
    DRIFT_ROLES = "drift:roles"
    DRIFT_PERMISSIONS = "drift:permissions"
    DRIFT_SERVICE_ID = "drift:service_id"
    ROTATION = "rotation"
    FORCED = "forced"  # --replace KEY: replaced now, whatever its state
    # A rotation due or a superseded credential past its grace, left to a later run by the
    # change budget (a sink that lost its record is still restored).
    DEFERRED = "deferred"
    DUPLICATE = "duplicate"  # newer than the credential the sinks hold: its secret is lost
    SUPERSEDED = "superseded"  # older than the credential the sinks hold, past grace
    ORPHAN = "orphan"  # marked, in no manifest: a delete with --prune, a noop without
    IN_GRACE = "in-grace"  # superseded, left live until the kept one is older than grace
    UP_TO_DATE = "up-to-date"
    SINK_ERROR = "sink-error"  # blocked: the detail says which sink and why


@dataclass(frozen=True, slots=True)
class Action:
    """One step of a plan, about one key. `client_id` is the existing credential it concerns."""

    kind: Kind
    key: str
    reason: Reason
    desired: DesiredCredential | None = None
    client_id: str | None = None
    # Replace: old credentials to delete once the new one is delivered (empty under grace).
    retire: tuple[str, ...] = ()
    # Every marked credential of this key seen when planning: never a create's lost leftover.
    known: tuple[str, ...] = ()
    detail: str = ""  # why, in words: shown to people next to the reason
    created_at: datetime | None = None  # of the credential it concerns: the oldest rotate first
    # Replace, delete: it ends only credentials no sink holds, made moments ago (what a killed
    # run created and never delivered): not counted by the change budget (see plan.LEFTOVER_AGE).
    leftover: bool = False
    # Restore: the readable sink whose record is copied, and the sinks it is copied to.
    # Update: (no source) the readable sinks whose records it refreshes.
    source: str | None = None
    targets: tuple[str, ...] = ()
    # Create, replace, update, restore: when the credential it leaves will be due for rotation.
    rotates_at: datetime | None = None
    # Create: another owner whose marked credential has this key (a wrong `owner:`, maybe).
    taken_by: str | None = None

    @property
    def writes(self) -> bool:
        return self.kind not in (Kind.NOOP, Kind.BLOCKED)


@dataclass(frozen=True, slots=True)
class Plan:
    """Actions in order: each desired key's actions in manifest order, then orphans."""

    actions: tuple[Action, ...]
    # Marked credentials of other owners: (owner, how many), never touched, shown once.
    other_owners: tuple[tuple[str, int], ...] = ()

    @property
    def counts(self) -> Mapping[Kind, int]:
        return Counter(action.kind for action in self.actions)

    def count(self, kind: Kind, reason: Reason | None = None) -> int:
        return sum(1 for a in self.actions if a.kind is kind and reason in (None, a.reason))

    @property
    def has_changes(self) -> bool:
        return any(action.writes for action in self.actions)


# What readable sinks hold: key -> sink name -> client_id (None when a sink holds nothing).
# A sink absent from a key's mapping is write-only: it counts as holding whatever is live.
Holdings = Mapping[str, Mapping[str, str | None]]


class Status(StrEnum):
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"  # not started: the run was asked to stop
    # Not done: an update the API could only make as a replace, beyond the change budget.
    DEFERRED = "deferred"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one action; `client_id` is the new credential for create/replace."""

    action: Action
    status: Status
    client_id: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class Observed:
    """What a run saw before planning; `blocked` holds the keys that cannot be planned: a sink
    they name failed its check (token refused, directory unwritable) or could not be read."""

    roles: Sequence[Role]
    remote: Sequence[RemoteCredential]
    holdings: Holdings
    blocked: Mapping[str, SinkError]


@dataclass(frozen=True)
class Planned:
    """A plan, and the credentials that cannot be reconciled this run (a sink failed its check
    or could not be read); the plan holds one `blocked` action for each of them."""

    plan: Plan
    blocked: Mapping[str, SinkError]
    # Set when the plan exceeds the change budget: what, and how to proceed. Apply stops.
    refusal: str | None = None
    # Restores: the proven record of each key, secret included (its repr never shows it).
    records: Mapping[str, SinkRecord] = field(default_factory=dict, repr=False)
    # Counted changes the budget still allows once the plan's are done (None: no limit): an
    # update that the API can only make as a replace spends one, or is deferred.
    room: int | None = None


@dataclass(frozen=True)
class RunResult:
    """One apply: its plan and what became of each action."""

    run_id: str
    started_at: datetime
    finished_at: datetime
    plan: Plan
    outcomes: tuple[Outcome, ...]

    @property
    def failed(self) -> bool:
        """Some action failed or was not started, or some credential could not be planned."""
        blocked = any(action.kind is Kind.BLOCKED for action in self.plan.actions)
        # A deferred change is left for a later run on purpose, like a deferred rotation.
        done = (Status.OK, Status.DEFERRED)
        return blocked or any(outcome.status not in done for outcome in self.outcomes)


class Allowance:
    """What the budget leaves for changes the plan did not foresee (an update that the API can
    only make as a replace). Used by one run's tasks on one event loop: no lock needed."""

    def __init__(self, room: int | None) -> None:
        self.room = room

    def take(self) -> bool:
        """Spend one counted change; False when none is left (then the change is deferred)."""
        if self.room is None:
            return True
        if self.room <= 0:
            return False
        self.room -= 1
        return True
