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
from provisioner.manifest.project_key import AclSpec, KafkaSpec, McpSpec
from provisioner.model import MAX_DESCRIPTION

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


_ROLES = "Role keys, names or ids, resolved via GET /auth/roles. Exclusive with permissions."
_PERMISSIONS = "Permission ids (passed as permission_ids). Exclusive with roles."
_SINKS = "Names of the sinks each new secret is delivered to."
_ROTATE = "Replace credentials older than this, e.g. 90d (units: s, m, h, d, w)."
_GRACE = (
    "How long a replaced credential stays live after its successor was delivered, e.g. 1h "
    "(units: s, m, h, d, w); 0s by default."
)
_GRACE_MAX = (
    "After a replacement, keep the old credential past `grace` while it is still used, at most "
    "this long (units: s, m, h, d, w); at least `grace`. Without it the old one goes at `grace`."
)
_KIND = (
    "client-credential (the default: API access only) or project-key (API access, Kafka "
    "access and MCP scoping in one credential)."
)


class _Inheritable(_Strict):
    """The fields a credential may take from `defaults` when it does not say."""

    roles: Annotated[list[Reference], Field(min_length=1)] | None = Field(
        default=None, description=_ROLES
    )
    permissions: list[Reference] | None = Field(default=None, description=_PERMISSIONS)
    sinks: list[Name] | None = Field(default=None, description=_SINKS)
    rotate_after: Duration | None = Field(default=None, description=_ROTATE)
    grace: Duration | None = Field(default=None, description=_GRACE)
    grace_max: Duration | None = Field(default=None, description=_GRACE_MAX)
    kind: Literal["client-credential", "project-key"] | None = Field(
        default=None, description=_KIND
    )


class DefaultsSpec(_Inheritable):
    """Values a credential inherits when it does not say."""


class CredentialSpec(_Inheritable):
    """One credential of a service."""

    name: Name = Field(
        description="The credential's name, unique within its service; its key is "
        "<service>/<credential>."
    )
    description: Annotated[str, StringConstraints(max_length=MAX_DESCRIPTION)] | None = Field(
        None,
        description="Free text; the remote description gets the ownership marker "
        f"[provisioner:<key>] appended, and with it may be at most {MAX_DESCRIPTION} characters.",
    )
    kafka: KafkaSpec | None = Field(
        default=None,
        description="Kafka access of a project key (`kind: project-key`): a Kafka user with "
        "these ACLs.",
    )
    mcp: McpSpec | None = Field(
        default=None,
        description="Which tools of Streamkap's MCP server the project key's API access may "
        "call (`kind: project-key`, with roles or permissions).",
    )


class ServiceSpec(_Strict):
    """A service and the credentials it needs."""

    name: Name = Field(description="The service's name: lowercase letters, digits, '.', '_', '-'.")
    service_id: Reference | None = Field(
        default=None, description="Optional Streamkap service id the credentials belong to."
    )
    credentials: Annotated[list[CredentialSpec], Field(min_length=1)] = Field(
        description="The credentials this service needs."
    )


class SinkSpec(BaseModel):
    """A named sink: `type` plus the options of that type (checked against the type's model)."""

    model_config = ConfigDict(extra="allow", frozen=True)
    type: Annotated[str, StringConstraints(min_length=1)] = Field(
        description="The sink type: file, env, vault, or one a plugin registers; the other "
        "keys are that type's options (docs/sinks.md)."
    )


class ManifestDocument(_Strict):
    """One YAML document of a manifest file."""

    version: Literal[1] = Field(description="The manifest format's version: 1.")
    owner: Name | None = Field(
        default=None,
        description="Whose credentials these are: orphans and --prune only ever concern the "
        "run's owner (every file of a run naming one must name the same).",
    )
    defaults: DefaultsSpec = Field(
        default=DefaultsSpec(),
        description="Values that apply where a credential does not say: per file (per YAML "
        "document), never reaching another file's credentials, unlike `sinks`.",
    )
    sinks: dict[Name, SinkSpec] = Field(
        default_factory=dict,
        description="Named sinks, shared by every file of a run: a credential may name a sink "
        "another file defines (a name defined twice with different options is an error).",
    )
    services: list[ServiceSpec] = Field(
        default_factory=list, description="The services and the credentials each needs."
    )


SINK_MAP = TypeAdapter(dict[Name, SinkSpec])

#: Every field name of the format, for "did you mean" on an unknown one.
FIELD_NAMES = tuple(
    sorted(
        {
            name
            for model in (
                ManifestDocument,
                DefaultsSpec,
                ServiceSpec,
                CredentialSpec,
                KafkaSpec,
                AclSpec,
                McpSpec,
            )
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
