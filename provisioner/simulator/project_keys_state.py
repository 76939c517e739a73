"""The simulated account's project keys: their records, statuses over time, logins and use.

Statuses move on the simulator's clock, settled whenever a key is read: a key asking for Kafka
access is `creating` until `activation_delay` seconds have passed (or the `slow_activation`
fault's, or forever), and a deleted key is `deleting` for `deletion_delay` seconds, then gone
(or `delete_failed`, by the `project_key_delete_failed_rate` fault). One lock guards it all.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from provisioner.simulator.faults import FaultConfig

CREATING, ACTIVE, DELETING, DELETE_FAILED = "creating", "active", "deleting", "delete_failed"
#: The statuses in which a PATCH is refused (400).
BUSY = frozenset({CREATING, DELETING, DELETE_FAILED})
#: The statuses in which a key's API credential may log in.
USABLE = frozenset({CREATING, ACTIVE})


class UsernameTaken(Exception):
    """The Kafka username asked for belongs to another key of the tenant (answered 409)."""


@dataclass(frozen=True)
class ProjectKeyRecord:
    """One project key, its secrets included (the API shows them only once)."""

    id: str
    name: str
    description: str | None
    service_id: str | None
    status: str
    created_at: datetime
    api_client_id: str | None = None
    api_secret: str | None = None
    role_ids: tuple[str, ...] = ()
    permission_ids: tuple[str, ...] = ()
    kafka_username: str | None = None
    kafka_password: str | None = None
    kafka_acls: tuple[Mapping[str, str], ...] = ()
    whitelist_ips: str | None = None
    schema_registry: bool = False
    tool_profile: str | None = None
    allowed_tools: tuple[str, ...] = ()
    blocked_tools: tuple[str, ...] = ()
    last_used_at: datetime | None = None
    #: When the status in progress (`creating`, `deleting`) ends; None: never.
    settles_at: datetime | None = None
    #: Whether the deletion in progress ends `delete_failed` instead of the key being gone.
    delete_fails: bool = False
    created_by: Mapping[str, Any] | None = field(default=None, compare=False)

    @property
    def has_api(self) -> bool:
        return self.api_client_id is not None

    @property
    def has_kafka(self) -> bool:
        return self.kafka_username is not None


def new_api_access() -> tuple[str, str]:
    """A client id and secret for a key's API access, shaped like a client credential's."""
    return f"cc_{secrets.token_hex(12)}", secrets.token_urlsafe(32)


class ProjectKeyStore:
    """The project keys of one simulated account."""

    def __init__(
        self,
        now: Callable[[], datetime],
        faults: Callable[[], FaultConfig],
        delete_fails: Callable[[], bool],
    ) -> None:
        self._now = now
        self._faults = faults
        self._delete_fails = delete_fails
        self._lock = threading.Lock()
        self._keys: dict[str, ProjectKeyRecord] = {}
        self._issued: list[str] = []
        #: Seconds a key asking for Kafka access stays `creating` (plain attribute: tests set it).
        self.activation_delay = 1.0
        #: Seconds a deleted key stays `deleting`.
        self.deletion_delay = 1.0

    def add(self, record: ProjectKeyRecord) -> ProjectKeyRecord:
        """Store a new key (id, status and times filled in); UsernameTaken if its user is."""
        now = self._now()
        record = replace(record, id=f"pk_{secrets.token_hex(12)}", created_at=now)
        if record.has_kafka:
            record = replace(record, status=CREATING, settles_at=self._activation(now))
        else:
            record = replace(record, status=ACTIVE, settles_at=None)
        with self._lock:
            self._check_username(record.kafka_username, record.id, now)
            self._keys[record.id] = record
            self._remember(record)
        return record

    def update(self, key_id: str, change: Callable[[ProjectKeyRecord], ProjectKeyRecord]) -> None:
        """Replace a key by `change(key)`; adding Kafka access starts a new `creating` spell."""
        now = self._now()
        with self._lock:
            old = self._settled(key_id, now)
            if old is None:
                raise KeyError(key_id)
            new = change(old)
            if new.has_kafka and not old.has_kafka:
                self._check_username(new.kafka_username, key_id, now)
                new = replace(new, status=CREATING, settles_at=self._activation(now))
            self._keys[key_id] = new
            self._remember(new)

    def delete(self, key_id: str) -> bool:
        """Start deleting a key (again, after `delete_failed`); False if there is none."""
        now = self._now()
        fails = self._delete_fails()
        with self._lock:
            record = self._settled(key_id, now)
            if record is None:
                return False
            if record.status != DELETING:
                settles = now + timedelta(seconds=self.deletion_delay)
                record = replace(record, status=DELETING, settles_at=settles, delete_fails=fails)
                self._keys[key_id] = record
            return True

    def get(self, key_id: str) -> ProjectKeyRecord | None:
        """The key with this id as it stands now, if it exists."""
        now = self._now()
        with self._lock:
            return self._settled(key_id, now)

    def live(self) -> list[ProjectKeyRecord]:
        """Every key that exists now (deleting and delete_failed ones included), oldest first."""
        now = self._now()
        with self._lock:
            settled = (self._settled(key_id, now) for key_id in list(self._keys))
            return [record for record in settled if record is not None]

    def login(self, client_id: str, secret: str) -> bool:
        """Whether a key's API credential matches; each login moves the key's `last_used_at`."""
        now = self._now()
        with self._lock:
            record = self._by_client_id(client_id, now)
            if record is None or record.api_secret is None or record.status not in USABLE:
                return False
            if not secrets.compare_digest(secret.encode(), record.api_secret.encode()):
                return False
            self._keys[record.id] = replace(record, last_used_at=now)
            return True

    def use(self, key_id: str) -> None:
        """Mark a key used now, as a Kafka client reading with its user would."""
        self.update(key_id, lambda record: replace(record, last_used_at=self._now()))

    def grants_of(self, client_id: str) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
        """The role and permission ids of the key whose API credential this is; None if none."""
        now = self._now()
        with self._lock:
            record = self._by_client_id(client_id, now)
        if record is None or record.status not in USABLE:
            return None
        return record.role_ids, record.permission_ids

    def issued_secrets(self) -> list[str]:
        """Every API secret and Kafka password the keys ever had, for tests that prove no leak."""
        with self._lock:
            return list(self._issued)

    def restore(self, records: Iterable[ProjectKeyRecord]) -> None:
        """Put back keys an earlier process saved (`--simulate` runs that follow on)."""
        with self._lock:
            for record in records:
                self._keys[record.id] = record
                self._remember(record)

    def age(self, key_id: str, by: timedelta) -> None:
        """Make a key older by `by` (its creation time moves back)."""
        self.update(key_id, lambda record: replace(record, created_at=record.created_at - by))

    # Under the lock ----------------------------------------------------------------------------

    def _settled(self, key_id: str, now: datetime) -> ProjectKeyRecord | None:
        """The key after whatever was due by `now` (activation, the end of a deletion)."""
        record = self._keys.get(key_id)
        if record is None or record.settles_at is None or record.settles_at > now:
            return record
        if record.status == CREATING:
            record = replace(record, status=ACTIVE, settles_at=None)
        elif record.status == DELETING and record.delete_fails:
            record = replace(record, status=DELETE_FAILED, settles_at=None, delete_fails=False)
        elif record.status == DELETING:
            del self._keys[key_id]
            return None
        self._keys[key_id] = record
        return record

    def _by_client_id(self, client_id: str, now: datetime) -> ProjectKeyRecord | None:
        for key_id, record in list(self._keys.items()):
            if record.api_client_id == client_id:
                return self._settled(key_id, now)
        return None

    def _check_username(self, username: str | None, key_id: str, now: datetime) -> None:
        """A user stays taken until its key is gone (while `deleting` and `delete_failed` too)."""
        if username is None:
            return
        for other in list(self._keys):
            record = self._settled(other, now)
            if record is not None and record.kafka_username == username and other != key_id:
                raise UsernameTaken(username)

    def _activation(self, now: datetime) -> datetime | None:
        slow = self._faults().slow_activation
        if slow == "never":
            return None
        delay = self.activation_delay if slow is None else slow
        return now + timedelta(seconds=delay)

    def _remember(self, record: ProjectKeyRecord) -> None:
        for secret in (record.api_secret, record.kafka_password):
            if secret is not None and secret not in self._issued:
                self._issued.append(secret)
