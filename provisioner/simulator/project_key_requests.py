"""The bodies `/project-keys` accepts, validated as the API does (a 422 otherwise): Kafka
usernames and passwords, ACL operations that suit their resource, allow lists that parse, roles
xor permissions, and at least one access for a new key."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: Kafka usernames: lowercase letters, digits and dashes, 1-24, no dash at either end.
USERNAME = r"^[a-z0-9]([a-z0-9-]{0,22}[a-z0-9])?$"
#: Operations each ACL resource accepts.
OPERATIONS = {
    "TOPIC": {
        "ALL",
        "ALTER",
        "ALTER_CONFIGS",
        "CREATE",
        "DELETE",
        "DESCRIBE",
        "DESCRIBE_CONFIGS",
        "READ",
        "WRITE",
    },
    "GROUP": {"DELETE", "DESCRIBE", "READ"},
}

_Ids = Annotated[list[str], Field(min_length=1)]
_Password = Annotated[str, Field(min_length=12, max_length=128)]
ToolProfile = Literal["full", "read-only", "agent-operator", "infra-admin"]


class KafkaAclReq(BaseModel):
    """One ACL: an operation valid for its resource."""

    model_config = ConfigDict(extra="allow")
    topic_name: str = Field(min_length=1)
    operation: str
    resource_pattern_type: Literal["LITERAL", "PREFIXED"]
    resource: Literal["TOPIC", "GROUP"] = "TOPIC"

    @model_validator(mode="after")
    def _operation_fits(self) -> KafkaAclReq:
        if self.operation not in OPERATIONS[self.resource]:
            raise ValueError(f"operation {self.operation!r} is not valid for {self.resource}")
        return self


def _check_ips(value: str | None) -> str | None:
    for part in (value or "").split(","):
        if part.strip():
            ipaddress.ip_network(part.strip(), strict=False)  # ValueError: a 422
    return value


_Ips = Annotated[str, Field(max_length=1000)]


class KafkaConfigReq(BaseModel):
    """`kafka_config`: the Kafka user to make."""

    model_config = ConfigDict(extra="allow")
    username: str = Field(pattern=USERNAME)
    password: _Password
    whitelist_ips: _Ips | None = None
    kafka_acls: list[KafkaAclReq] = []
    is_create_schema_registry: bool = False

    _ips = field_validator("whitelist_ips")(_check_ips)


class ProjectKeyCreateReq(BaseModel):
    """Body of `POST /project-keys`."""

    model_config = ConfigDict(extra="allow")
    name: str = Field(min_length=1, max_length=100)
    description: str | None = None
    role_ids: _Ids | None = None
    permission_ids: _Ids | None = None
    kafka_config: KafkaConfigReq | None = None
    tool_profile: ToolProfile | None = None
    allowed_tools: list[str] | None = None
    blocked_tools: list[str] | None = None

    @model_validator(mode="after")
    def _capabilities(self) -> ProjectKeyCreateReq:
        if self.role_ids is not None and self.permission_ids is not None:
            raise ValueError("role_ids and permission_ids are mutually exclusive")
        if self.role_ids is None and self.permission_ids is None and self.kafka_config is None:
            raise ValueError("a project key needs API access (role_ids or permission_ids) or Kafka")
        return self


class ProjectKeyUpdateReq(BaseModel):
    """Body of `PATCH /project-keys/{id}`: every field optional."""

    model_config = ConfigDict(extra="allow")
    name: str | None = Field(default=None, min_length=1, max_length=100)
    description: str | None = None
    role_ids: _Ids | None = None
    permission_ids: _Ids | None = None
    kafka_acls: list[KafkaAclReq] | None = None
    whitelist_ips: _Ips | None = None
    kafka_config: KafkaConfigReq | None = None
    kafka_password: _Password | None = None
    tool_profile: ToolProfile | None = None
    allowed_tools: list[str] | None = None
    blocked_tools: list[str] | None = None

    _ips = field_validator("whitelist_ips")(_check_ips)

    @model_validator(mode="after")
    def _exclusive(self) -> ProjectKeyUpdateReq:
        if self.role_ids is not None and self.permission_ids is not None:
            raise ValueError("role_ids and permission_ids are mutually exclusive")
        return self
