"""Field mapping: a sink's `fields: {OUT_KEY: record_field}` option, shared by every readable sink.

Without `fields` a sink stores the record's own layout (`SinkRecord.to_document()`). With it, the
stored object holds the mapped keys of the fields the record has: a field the record lacks (a
Kafka-only project key's `client_id` and `secret`, a client credential's `project_key_id` and
Kafka login) is left out, never stored empty. Reconciliation reads the credential's identity back,
so a mapping holds `client_id` and `secret`, or `project_key_id` (or all three).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from pydantic import field_validator

from provisioner.logs import register_secret
from provisioner.model import KAFKA_FIELDS, SinkRecord
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
    "project_key_id",
    *KAFKA_FIELDS,
)
#: The fields whose values come from the manifest (the others from the API): validation checks
#: that a sink can store them.
MANIFEST_FIELDS = ("service", "credential", "description", "permission_ids", "service_id")
#: A mapping reads an identity back: the API access's pair, or a project key's id.
_API_PAIR = ("client_id", "secret")
_PROJECT_KEY_ID = "project_key_id"
#: The fields holding a secret: what is registered for redaction when a stored object is read.
_SECRET_FIELDS = ("secret", "kafka_password")
# The password inside `kafka_properties` (JAAS-quoted): redacted when only that field is mapped.
_JAAS_PASSWORD = re.compile(r'password="((?:\\.|[^"\\])*)"')


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
    missing = [name for name in _API_PAIR if name not in fields.values()]
    if missing and _PROJECT_KEY_ID not in fields.values():
        problems.append(
            f"{' and '.join(missing)} must be mapped, or {_PROJECT_KEY_ID} (reconciliation reads "
            "back client_id and secret, or a project key's id)"
        )
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
        """The stored object, secrets unwrapped: call only inside a sink's write. A mapped field
        the record does not have (see the module's doc) is left out."""
        document = record.to_document()
        if self._fields is None:
            return document
        return {out: document[name] for out, name in self._fields.items() if name in document}

    def to_strings(self, record: SinkRecord) -> dict[str, str]:
        """The stored object as text values (for stores of strings: env variables)."""
        return {key: _text(value) for key, value in self.to_document(record).items()}

    def identity(self, document: object) -> str | None:
        """The credential a stored object holds (`SinkRecord.identity`): its `project_key_id`
        when mapped and present, else its `client_id`; None when it holds neither."""
        return self._value(document, _PROJECT_KEY_ID) or self._value(document, "client_id")

    def secrets(self, document: object) -> tuple[str, ...]:
        """The secrets a stored object holds (to register for redaction as it is read)."""
        found = [self._value(document, name) for name in _SECRET_FIELDS]
        properties = self._value(document, "kafka_properties")
        if properties is not None:
            found += [properties, *_JAAS_PASSWORD.findall(properties)]
        return tuple(value for value in found if value is not None)

    def remember(self, document: object) -> None:
        """Register every secret a stored object holds for redaction (see provisioner.logs)."""
        for value in self.secrets(document):
            register_secret(value)

    def from_document(self, document: object, service: str, credential: str) -> SinkRecord | None:
        """A stored object read back; None unless it holds a whole credential (the rule of
        `SinkRecord.from_document`). `kafka_properties` is derived: never read back."""
        if self._fields is None:
            return SinkRecord.from_document(document)
        if not isinstance(document, Mapping):
            return None
        values: dict[str, object] = {}
        for out, name in self._fields.items():
            value = document.get(out)
            if name not in values and value is not None and value != "":
                values[name] = value  # a field stored empty (env) reads back as absent
        values["role_ids"] = list(_texts(values.get("role_ids")))
        values["permission_ids"] = list(_texts(values.get("permission_ids")))
        return SinkRecord.from_document({**values, "service": service, "credential": credential})

    def _value(self, document: object, record_field: str) -> str | None:
        """The non-empty text a stored object holds for a mapped field, or None."""
        if not isinstance(document, Mapping) or not self.maps(record_field):
            return None
        value = document.get(self.out_key(record_field))
        return value if isinstance(value, str) and value else None

    def maps(self, record_field: str) -> bool:
        """Whether the stored layout holds `record_field` (the record's own layout: all)."""
        return self._fields is None or record_field in self._fields.values()


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


def _texts(value: object) -> tuple[str, ...]:
    if isinstance(value, list):
        return tuple(item for item in value if isinstance(item, str))
    if isinstance(value, str) and value:
        return tuple(value.split(","))  # as `to_strings` joined them
    return ()
