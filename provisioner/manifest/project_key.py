"""The parts of the manifest format only a project key takes: `kafka:` (ACLs, allowed addresses,
Schema Registry, username) and `mcp:` (tool scoping), with their model values."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from provisioner.model import AclEntry, KafkaAccess, McpScope

#: The operations the API takes per resource type, in its spelling.
OPERATIONS = {
    "TOPIC": (
        "ALL",
        "ALTER",
        "ALTER_CONFIGS",
        "CREATE",
        "DELETE",
        "DESCRIBE",
        "DESCRIBE_CONFIGS",
        "READ",
        "WRITE",
    ),
    "GROUP": ("DELETE", "DESCRIBE", "READ"),
}
PATTERNS = ("literal", "prefixed")
MCP_PROFILES = ("full", "read-only", "agent-operator", "infra-admin")
#: The readable part of a Kafka username: the provisioner appends `-xxxx` (a generation suffix
#: that changes on each replacement), and the API takes 24 characters at most.
USERNAME_PATTERN = r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$"
MAX_USERNAME = 19
#: The API takes the allowed addresses as one comma-separated text of at most this length.
MAX_ALLOW_IPS = 1000


def _any_case(words: tuple[str, ...]) -> str:
    """A JSON Schema pattern matching any of `words` in any case (editors check it as typed)."""
    spelled = ("".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in w) for w in words)
    return "^(" + "|".join(spelled) + ")$"


def _problem(message: str) -> PydanticCustomError:
    """A validation error whose message is shown as it is (file:line: field: message)."""
    return PydanticCustomError("project_key", message)


def _pattern(value: str) -> str:
    if value.lower() not in PATTERNS:
        raise _problem(f"unknown pattern {value!r}: expected literal or prefixed")
    return value.upper()


def _network(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value.strip(), strict=False))
    except ValueError:
        raise _problem(
            f"{value!r} is not an IP address or network (such as 10.0.0.0/8 or 192.0.2.7)"
        ) from None


def _allow_list(networks: list[str]) -> list[str]:
    joined = ",".join(dict.fromkeys(networks))
    if len(joined) > MAX_ALLOW_IPS:
        raise _problem(
            f"{len(joined)} characters joined by commas, but the API takes at most "
            f"{MAX_ALLOW_IPS}: use fewer, wider networks"
        )
    return networks


Text = Annotated[str, StringConstraints(min_length=1, max_length=256)]
Pattern = Annotated[
    str,
    AfterValidator(_pattern),
    WithJsonSchema({"type": "string", "pattern": _any_case(PATTERNS)}),
]
Operation = Annotated[
    str, WithJsonSchema({"type": "string", "pattern": _any_case(OPERATIONS["TOPIC"])})
]
Network = Annotated[str, AfterValidator(_network)]
Username = Annotated[str, StringConstraints(pattern=USERNAME_PATTERN, max_length=MAX_USERNAME)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AclSpec(_Strict):
    """One ACL entry: one topic or one consumer group, and the operations allowed on it."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "oneOf": [{"required": ["topic"]}, {"required": ["group"]}],
            "if": {"required": ["group"]},
            "then": {
                "properties": {
                    "operations": {
                        "description": "A group takes DELETE, DESCRIBE, READ.",
                        "items": {"pattern": _any_case(OPERATIONS["GROUP"])},
                    }
                }
            },
        },
    )

    topic: Text | None = Field(
        default=None, description="A topic name (or its prefix); exclusive with group."
    )
    group: Text | None = Field(
        default=None, description="A consumer group name (or its prefix); exclusive with topic."
    )
    pattern: Pattern = Field(
        default="LITERAL",
        description="literal (the default: the exact name) or prefixed (every name that "
        "starts with it); any case.",
    )
    operations: Annotated[list[Operation], Field(min_length=1)] = Field(
        description="What is allowed, any case. A topic: ALL, ALTER, ALTER_CONFIGS, CREATE, "
        "DELETE, DESCRIBE, DESCRIBE_CONFIGS, READ, WRITE. A group: DELETE, DESCRIBE, READ."
    )

    @field_validator("operations")
    @classmethod
    def _operations(cls, value: list[str], info: ValidationInfo) -> list[str]:
        resource = "GROUP" if info.data.get("group") else "TOPIC"
        allowed = OPERATIONS[resource]
        wrong = [op for op in value if op.upper() not in allowed]
        if wrong:
            raise _problem(
                f"{', '.join(map(repr, wrong))} not valid for a {resource.lower()}: "
                f"expected {', '.join(allowed)}"
            )
        return list(dict.fromkeys(op.upper() for op in value))

    @model_validator(mode="after")
    def _one_resource(self) -> AclSpec:
        if (self.topic is None) == (self.group is None):
            said = "both" if self.topic is not None else "neither"
            raise _problem(f"give one of `topic:` or `group:` per entry ({said} given)")
        return self

    def entries(self) -> list[AclEntry]:
        """One API ACL per operation."""
        resource, name = ("TOPIC", self.topic) if self.topic is not None else ("GROUP", self.group)
        return [AclEntry(resource, str(name), self.pattern, op) for op in self.operations]


class KafkaSpec(_Strict):
    """A project key's Kafka access."""

    acls: list[AclSpec] = Field(
        default_factory=list,
        description="Topic and consumer-group ACLs, each entry one `topic:` or one `group:`.",
    )
    allow_ips: Annotated[list[Network], AfterValidator(_allow_list)] = Field(
        default_factory=list,
        description="IP addresses or networks (CIDR) the Kafka user may connect from; none: "
        f"any. At most {MAX_ALLOW_IPS} characters joined by commas.",
    )
    schema_registry: StrictBool = Field(
        default=False, description="Whether the key may use the Schema Registry."
    )
    username: Username | None = Field(
        default=None,
        description="The readable part of the Kafka username: lowercase letters, digits and "
        f"'-', at most {MAX_USERNAME} characters (a generation suffix `-xxxx` is appended); "
        "derived from the key when left out.",
    )

    def access(self) -> KafkaAccess:
        return KafkaAccess(
            acls=frozenset(entry for acl in self.acls for entry in acl.entries()),
            allow_ips=frozenset(self.allow_ips),
            schema_registry=self.schema_registry,
            username=self.username,
        )


ToolName = Annotated[str, StringConstraints(min_length=1, max_length=256)]


class McpSpec(_Strict):
    """Which tools of Streamkap's MCP server a project key may call."""

    profile: Literal["full", "read-only", "agent-operator", "infra-admin"] | None = Field(
        default=None,
        description="A tool profile: full, read-only, agent-operator or infra-admin.",
    )
    allow: list[ToolName] = Field(
        default_factory=list, description="Tool names allowed (overriding the profile)."
    )
    block: list[ToolName] = Field(
        default_factory=list, description="Tool names blocked (removed from the profile)."
    )

    def scope(self) -> McpScope:
        return McpScope(
            profile=self.profile, allow=frozenset(self.allow), block=frozenset(self.block)
        )
