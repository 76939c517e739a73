"""Plain data passed between stages: what is desired, what was observed, what was created."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pydantic import SecretStr

_MARKER = re.compile(r"(?:^|(?<= ))\[provisioner:([^\[\]]+)\]$")


def marker(key: str) -> str:
    """The ownership marker that ends the description of every credential we manage."""
    return f"[provisioner:{key}]"


def marked_description(description: str | None, key: str) -> str:
    """The description to send on create: the manifest's text, then the marker."""
    return f"{description} {marker(key)}" if description else marker(key)


def owner_key(description: str | None) -> str | None:
    """The key a remote description marks as ours, or None when it carries no marker."""
    if not description:
        return None
    found = _MARKER.search(description)
    return found.group(1) if found else None


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

    @property
    def key(self) -> str:
        return f"{self.service}/{self.name}"

    @property
    def remote_description(self) -> str:
        return marked_description(self.description, self.key)


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
