"""What valid manifests would have the API and the sinks store, checked before anything is:
the description the API keeps (marker included), and in each sink the final names (two
credentials never share one), the manifest's values (each stored exactly), and that a sink's
`fields` keep what the credential's kind needs read back (and map nothing it lacks)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from pydantic import SecretStr

from provisioner.model import (
    KAFKA_FIELDS,
    MAX_DESCRIPTION,
    CredentialKind,
    DesiredCredential,
    Origin,
    SinkRecord,
    marker,
)
from provisioner.sinks import SinkDefinition, SinkOptions

PROJECT_KEY_ID = "project_key_id"
#: A project key's Kafka login as reconciliation reads it back (of `KAFKA_FIELDS`).
_KAFKA_SECRETS = tuple(f for f in KAFKA_FIELDS if f in {"kafka_username", "kafka_password"})

#: `file:line: field.path` of an origin, as problems start.
Where = Callable[[Origin], str]


class StoredNames:
    """The checks, across every credential of a run: `problems` lists what fails."""

    def __init__(self, sinks: Mapping[str, SinkDefinition], where: Where) -> None:
        self._sinks = sinks
        self._where = where
        self._taken: dict[tuple[str, str], DesiredCredential] = {}  # (sink, name) -> first
        self._reported: set[tuple[str, str, str]] = set()  # (sink, key, key): once per pair

    def problems(self, credentials: Sequence[DesiredCredential]) -> list[str]:
        found: list[str] = []
        for credential in credentials:
            found += self._description(credential)
            for name in credential.sinks:
                definition = self._sinks.get(name)
                if definition is not None:
                    found += self._fields(credential, name, definition.options)
                    found += self._values(credential, name, definition.options)
                    found += self._names(credential, name, definition.options)
        return found

    def _description(self, credential: DesiredCredential) -> Iterable[str]:
        """The description with its marker must fit what the API keeps, or the marker is lost."""
        length = len(credential.remote_description)
        if credential.description is None or length <= MAX_DESCRIPTION:
            return
        mark = marker(credential.key, credential.owner)
        room = MAX_DESCRIPTION - len(mark) - 1
        yield (
            f"{self._where(credential.origin.child('description'))}: {length} characters with "
            f"the ownership marker {mark!r} appended, but the API keeps {MAX_DESCRIPTION} "
            f"(docs/limits.md): shorten it to at most {room}"
        )

    def _fields(
        self, credential: DesiredCredential, sink: str, options: SinkOptions
    ) -> Iterable[str]:
        """A sink's `fields` must map what reconciliation reads back of this credential: a
        project key's id, and the secrets of each access it has; and nothing it does not have."""
        fields = getattr(options, "fields", None)
        if not isinstance(fields, Mapping):
            return
        mapped = set(fields.values())
        at = self._where(credential.origin)
        if credential.kind is CredentialKind.CLIENT_CREDENTIAL:
            extra = [f for f in (PROJECT_KEY_ID, *KAFKA_FIELDS) if f in mapped]
            if extra:
                yield (
                    f"{at}: sink {sink!r} maps {', '.join(extra)} in `fields`, which a client "
                    "credential does not have: use another sink, or `kind: project-key`"
                )
            return
        needed = [PROJECT_KEY_ID]
        if credential.wants_api:
            needed += ["client_id", "secret"]
        if credential.kafka is not None:
            needed += list(_KAFKA_SECRETS)
        missing = [f for f in needed if f not in mapped]
        if missing:
            yield (
                f"{at}: sink {sink!r} does not map {', '.join(missing)} in `fields`, which "
                "reconciliation reads back of this project key: add them to the sink's `fields`"
            )

    def _values(
        self, credential: DesiredCredential, sink: str, options: SinkOptions
    ) -> Iterable[str]:
        record = SinkRecord(
            service=credential.service,
            credential=credential.name,
            client_id="-",  # the API's values are not known yet, nor checked: only ours
            secret=SecretStr("-"),
            description=credential.description,
            permission_ids=credential.permission_ids,
            service_id=credential.service_id,
        )
        for field, why in options.unstorable(record).items():
            yield (
                f"{self._where(_field_origin(credential, field))}: sink {sink!r} cannot store "
                f"this {field} exactly ({why}): change it, or leave {field} out of the sink's "
                "`fields`"
            )

    def _names(self, credential: DesiredCredential, sink: str, options: SinkOptions) -> list[str]:
        # Only with a problem: finding a line composes the YAML nodes, which valid runs skip.
        at = credential.origin.child("name")
        try:
            names = options.record_names(credential.service, credential.name)
        except ValueError as exc:
            return [f"{self._where(at)}: sink {sink!r}: {exc}"]
        found: list[str] = []
        for stored in names:
            first = self._taken.setdefault((sink, stored), credential)
            pair = (sink, first.key, credential.key)
            if first.key == credential.key or pair in self._reported:
                continue
            self._reported.add(pair)
            found.append(
                f"{self._where(at)}: {credential.key!r} and {first.key!r} (at "
                f"{self._where(first.origin.child('name'))}) would both be stored as {stored} "
                f"in sink {sink!r}: each write of one would replace the other; rename one, or "
                "change the sink's `fields`"
            )
        return found


def _field_origin(credential: DesiredCredential, field: str) -> Origin:
    """Where a record field's value was written (near enough for one inherited)."""
    origin = credential.origin
    if field == "service_id":  # a field of the service, two levels up
        return Origin(origin.file, origin.doc, (*origin.path[:-2], "service_id"))
    manifest_name = {"permission_ids": "permissions", "credential": "name"}.get(field, field)
    return origin.child(manifest_name)
