"""Field mapping: a sink's `fields: {OUT_KEY: record_field}` option, shared by every readable sink.

Without `fields` a sink stores the record's own layout (`SinkRecord.to_document()`). With it, the
stored object holds exactly the mapped keys; `client_id` and `secret` must both be mapped, since
reconciliation reads them back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import SecretStr, field_validator

from provisioner.model import SinkRecord
from provisioner.sinks.base import SinkOptions

__all__ = ["MANIFEST_FIELDS", "RECORD_FIELDS", "FieldMap", "MappedSinkOptions", "check_fields"]

#: The record's fields, in the order `SinkRecord.to_document()` gives them.
RECORD_FIELDS = (
    "client_id",
    "secret",
    "service",
    "credential",
    "description",
    "role_ids",
    "permission_ids",
    "service_id",
    "created_at",
)
#: The fields whose values come from the manifest (the others from the API): validation checks
#: that a sink can store them.
MANIFEST_FIELDS = ("service", "credential", "description", "permission_ids", "service_id")
_REQUIRED = ("client_id", "secret")


def _any_key(out_key: str) -> str | None:
    return None


def check_fields(
    fields: Mapping[str, str],
    normalise: Callable[[str], str] = str,
    key_problem: Callable[[str], str | None] = _any_key,
) -> dict[str, str]:
    """`fields` validated; ValueError names every problem. `normalise` is how the sink spells an
    output key where it stores it (env variables are upper-cased): two keys spelled alike clash.
    `key_problem` says why the sink cannot store a key of that name (None when it can)."""
    problems: list[str] = []
    spelled: dict[str, str] = {}
    for out_key, record_field in fields.items():
        if not out_key:
            problems.append("an output key must not be empty")
        elif (problem := key_problem(out_key)) is not None:
            problems.append(f"{out_key!r}: {problem}")
        if record_field not in RECORD_FIELDS:
            problems.append(
                f"{out_key!r}: unknown record field {record_field!r} "
                f"(known: {', '.join(RECORD_FIELDS)})"
            )
        stored = normalise(out_key)
        if stored in spelled:
            problems.append(
                f"duplicate output key: {out_key!r} and {spelled[stored]!r} are both stored "
                f"as {stored!r}"
            )
        spelled.setdefault(stored, out_key)
    missing = [name for name in _REQUIRED if name not in fields.values()]
    if missing:
        problems.append(f"{' and '.join(missing)} must be mapped (reconciliation reads them back)")
    if problems:
        raise ValueError("; ".join(problems))
    return dict(fields)


class FieldMap:
    """How one sink lays a record out, and reads it back: the record's own layout by default."""

    def __init__(self, fields: Mapping[str, str] | None) -> None:
        self._fields = dict(fields) if fields else None

    @property
    def mapped(self) -> bool:
        return self._fields is not None

    def out_key(self, record_field: str) -> str:
        """The (first) output key that holds `record_field`."""
        if self._fields is None:
            return record_field
        return next(out for out, name in self._fields.items() if name == record_field)

    def to_document(self, record: SinkRecord) -> dict[str, object]:
        """The stored object, secret unwrapped: call only inside a sink's write."""
        document = record.to_document()
        if self._fields is None:
            return document
        return {out: document[name] for out, name in self._fields.items()}

    def to_strings(self, record: SinkRecord) -> dict[str, str]:
        """The stored object as text values (for stores of strings: env variables)."""
        return {key: _text(value) for key, value in self.to_document(record).items()}

    def client_id(self, document: object) -> str | None:
        """The `client_id` a stored object holds, or None."""
        if not isinstance(document, Mapping):
            return None
        value = document.get(self.out_key("client_id"))
        return value if isinstance(value, str) and value else None

    def secret(self, document: object) -> str | None:
        if not isinstance(document, Mapping):
            return None
        value = document.get(self.out_key("secret"))
        return value if isinstance(value, str) and value else None

    def from_document(self, document: object, service: str, credential: str) -> SinkRecord | None:
        """A stored object read back; None unless it holds a client_id and a secret."""
        if self._fields is None:
            return SinkRecord.from_document(document)
        if not isinstance(document, Mapping):
            return None
        client_id, secret = self.client_id(document), self.secret(document)
        if client_id is None or secret is None:
            return None
        values: dict[str, Any] = {}
        for out, name in self._fields.items():
            values.setdefault(name, document.get(out))
        return SinkRecord(
            service=service,
            credential=credential,
            client_id=client_id,
            secret=SecretStr(secret),
            description=_optional(values.get("description")),
            role_ids=_texts(values.get("role_ids")),
            permission_ids=_texts(values.get("permission_ids")),
            service_id=_optional(values.get("service_id")),
            created_at=_optional(values.get("created_at")),
        )


class MappedSinkOptions(SinkOptions):
    """Options of a sink that takes `fields` (its stored layout)."""

    fields: dict[str, str] | None = None

    @field_validator("fields")
    @classmethod
    def _fields(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        return None if value is None else check_fields(value, cls.stored_key, cls.key_problem)

    @classmethod
    def stored_key(cls, out_key: str) -> str:
        """How the sink spells an output key where it stores it."""
        return out_key

    @classmethod
    def key_problem(cls, out_key: str) -> str | None:
        """Why the sink cannot store an output key of this name; None when it can (JSON can)."""
        return None

    def field_map(self) -> FieldMap:
        return FieldMap(self.fields)

    def __hash__(self) -> int:  # a frozen model with a dict: hash what it would compare
        return hash((type(self), tuple(sorted((self.fields or {}).items())), *self._others()))

    def _others(self) -> tuple[object, ...]:
        return tuple(
            getattr(self, name) for name in sorted(type(self).model_fields) if name != "fields"
        )


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    return str(value)


def _optional(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _texts(value: object) -> tuple[str, ...]:
    if isinstance(value, list):
        return tuple(item for item in value if isinstance(item, str))
    if isinstance(value, str) and value:
        return tuple(value.split(","))  # as `to_strings` joined them
    return ()
