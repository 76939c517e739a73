"""The manifest format as pydantic models: what a YAML document may hold, and its JSON Schema."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
)

from provisioner.manifest.durations import PATTERN as DURATION_PATTERN
from provisioner.manifest.durations import parse_duration

NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,62}$"
DEFAULT_SINK = "default"

Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]


def _bounded_duration(text: str) -> str:
    parse_duration(text)  # ValueError past MAX_DURATION: reported with the file and line
    return text


Duration = Annotated[
    str, StringConstraints(pattern=DURATION_PATTERN), AfterValidator(_bounded_duration)
]
Reference = Annotated[str, StringConstraints(min_length=1, max_length=256)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DefaultsSpec(_Strict):
    """Values a credential inherits when it does not say."""

    roles: Annotated[list[Reference], Field(min_length=1)] | None = None
    permissions: list[Reference] | None = None
    sinks: list[Name] | None = None
    rotate_after: Duration | None = None
    grace: Duration | None = None


class CredentialSpec(_Strict):
    """One credential of a service."""

    name: Name
    description: Annotated[str, StringConstraints(max_length=1024)] | None = None
    roles: Annotated[list[Reference], Field(min_length=1)] | None = None
    permissions: list[Reference] | None = None
    sinks: list[Name] | None = None
    rotate_after: Duration | None = None
    grace: Duration | None = None


class ServiceSpec(_Strict):
    """A service and the credentials it needs."""

    name: Name
    service_id: Reference | None = None
    credentials: Annotated[list[CredentialSpec], Field(min_length=1)]


class SinkSpec(BaseModel):
    """A named sink: `type` plus the options of that type (checked against the type's model)."""

    model_config = ConfigDict(extra="allow", frozen=True)
    type: Annotated[str, StringConstraints(min_length=1)]


class ManifestDocument(_Strict):
    """One YAML document of a manifest file."""

    version: Literal[1]
    defaults: DefaultsSpec = DefaultsSpec()
    sinks: dict[Name, SinkSpec] = Field(default_factory=dict)
    services: list[ServiceSpec] = Field(default_factory=list)


SINK_MAP = TypeAdapter(dict[Name, SinkSpec])

#: Every field name of the format, for "did you mean" on an unknown one.
FIELD_NAMES = tuple(
    sorted(
        {
            name
            for model in (ManifestDocument, DefaultsSpec, ServiceSpec, CredentialSpec)
            for name in model.model_fields
        }
    )
)


def manifest_schema() -> dict[str, Any]:
    """The JSON Schema of one manifest document (for editors)."""
    schema = ManifestDocument.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "streamkap-provisioner manifest"
    return schema
