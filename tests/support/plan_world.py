"""A model of the world the planner reasons about, and an executor of plans against it.

The executor does what the engine does (create, deliver to every sink, delete the retired ones;
change roles; delete) without I/O, and refuses any action that touches a credential it must not.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from provisioner.model import (
    Action,
    DesiredCredential,
    Holdings,
    Kind,
    Plan,
    RemoteCredential,
)
from provisioner.reconcile.plan import plan

READABLE = ("files", "vault")
WRITE_ONLY = ("stdout",)


@dataclass
class World:
    """Remote credentials by id, what each readable sink stores per key, and the time."""

    remote: dict[str, RemoteCredential]
    stored: dict[tuple[str, str], str]  # (key, readable sink) -> client_id
    now: datetime
    created: int = 0
    restored: int = 0
    deleted: list[str] = field(default_factory=list)

    def holdings(self, desired: list[DesiredCredential]) -> Holdings:
        return {
            d.key: {s: self.stored.get((d.key, s)) for s in d.sinks if s in READABLE}
            for d in desired
        }

    def plan(self, desired: list[DesiredCredential], *, prune: bool) -> Plan:
        remote = list(self.remote.values())
        return plan(desired, remote, self.holdings(desired), now=self.now, prune=prune)

    def marked(self, key: str) -> list[RemoteCredential]:
        return [c for c in self.remote.values() if c.key == key]

    def execute(self, the_plan: Plan) -> None:
        """Carry out every action, checking that each one only concerns its own key."""
        for action in the_plan.actions:
            self._check_owned(action)
            if action.kind in (Kind.CREATE, Kind.REPLACE):
                self._create_and_deliver(action)
                for old in action.retire:
                    self._delete(old)
            elif action.kind is Kind.UPDATE:
                self._update(action)
            elif action.kind is Kind.RESTORE:
                self._copy(action)
            elif action.kind is Kind.DELETE:
                assert action.client_id is not None
                self._delete(action.client_id)

    def _update(self, action: Action) -> None:
        """PATCH: the same credential (client_id, secret, age) with the wanted roles."""
        assert action.desired is not None
        assert action.client_id is not None
        current = self.remote[action.client_id]
        roles = frozenset(action.desired.role_ids)
        self.remote[current.client_id] = replace(current, role_ids=roles)

    def _check_owned(self, action: Action) -> None:
        for client_id in (action.client_id, *action.retire, *action.known):
            if client_id is not None:
                assert self.remote[client_id].key == action.key, (action, client_id)

    def _create_and_deliver(self, action: Action) -> None:
        wanted = action.desired
        assert wanted is not None
        assert wanted.key == action.key
        self.created += 1
        new = RemoteCredential(
            client_id=f"new-{self.created}",
            description=wanted.remote_description,
            role_ids=frozenset(wanted.role_ids),
            service_id=wanted.service_id,
            created_at=self.now,
            permission_ids=frozenset(wanted.permission_ids),
        )
        self.remote[new.client_id] = new
        for sink in wanted.sinks:
            if sink in READABLE:
                self.stored[wanted.key, sink] = new.client_id

    def _copy(self, action: Action) -> None:
        """A restore: the source sink's record, copied to the sinks that lack it; no API call."""
        assert action.source is not None
        assert action.client_id in self.remote
        assert self.stored[action.key, action.source] == action.client_id
        for sink in action.targets:
            self.stored[action.key, sink] = action.client_id
        self.restored += 1

    def _delete(self, client_id: str) -> None:
        assert client_id not in self.deleted, f"{client_id} deleted twice"
        self.deleted.append(client_id)
        del self.remote[client_id]
