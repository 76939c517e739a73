"""The request bodies of `/project-keys`, built from plain values (docs/api.md, "Project keys").

A Kafka password is a `SecretStr` here and is registered for redaction when its body is built,
before it is sent: a server that echoes the request into an error cannot print it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr

from provisioner.logs import register_secret
from provisioner.streamkap.project_key_answers import KafkaAcl


@dataclass(frozen=True, slots=True)
class KafkaConfig:
    """`kafka_config`: the Kafka user a key gets (the caller chooses username and password)."""

    username: str
    password: SecretStr
    acls: tuple[KafkaAcl, ...] = ()
    whitelist_ips: tuple[str, ...] = ()  # empty: any address
    schema_registry: bool = False

    def json(self) -> dict[str, Any]:
        register_secret(self.password)
        body: dict[str, Any] = {
            "username": self.username,
            "password": self.password.get_secret_value(),
            "kafka_acls": [acl.json() for acl in self.acls],
            "is_create_schema_registry": self.schema_registry,
        }
        if self.whitelist_ips:
            body["whitelist_ips"] = ",".join(self.whitelist_ips)
        return body


@dataclass(frozen=True, slots=True)
class NewProjectKey:
    """`POST /project-keys`: API access from roles xor permissions (neither: no API access),
    Kafka access from `kafka`, MCP scoping from the tool fields. Empty lists are not sent."""

    name: str
    description: str | None = None
    role_ids: tuple[str, ...] = ()
    permission_ids: tuple[str, ...] = ()
    kafka: KafkaConfig | None = None
    tool_profile: str | None = None
    allowed_tools: tuple[str, ...] = ()
    blocked_tools: tuple[str, ...] = ()

    @property
    def wants_api(self) -> bool:
        return bool(self.role_ids or self.permission_ids)

    def json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"name": self.name, "description": self.description}
        optional = {
            "role_ids": list(self.role_ids),
            "permission_ids": list(self.permission_ids),
            "kafka_config": self.kafka.json() if self.kafka is not None else None,
            "tool_profile": self.tool_profile,
            "allowed_tools": list(self.allowed_tools),
            "blocked_tools": list(self.blocked_tools),
        }
        body.update({name: value for name, value in optional.items() if value})
        return body


@dataclass(frozen=True, slots=True)
class ProjectKeyChange:
    """`PATCH /project-keys/{id}`: None leaves a field as it is; an empty tuple empties it.

    `kafka` adds Kafka access to an API-only key (the answer must carry `new_kafka_credentials`);
    `role_ids`/`permission_ids` with `adds_api` add API access to a Kafka-only key (the answer
    must carry `new_api_credentials`). `adds_api` itself is not sent. Permissions cannot change
    once a key has API access; the API refuses it.
    """

    name: str | None = None
    description: str | None = None
    role_ids: tuple[str, ...] | None = None
    permission_ids: tuple[str, ...] | None = None
    kafka_acls: tuple[KafkaAcl, ...] | None = None
    whitelist_ips: tuple[str, ...] | None = None
    kafka: KafkaConfig | None = None
    kafka_password: SecretStr | None = None
    tool_profile: str | None = None
    allowed_tools: tuple[str, ...] | None = None
    blocked_tools: tuple[str, ...] | None = None
    adds_api: bool = False

    @property
    def adds_kafka(self) -> bool:
        return self.kafka is not None

    def json(self) -> dict[str, Any]:
        register_secret(self.kafka_password)
        fields: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "role_ids": _list(self.role_ids),
            "permission_ids": _list(self.permission_ids),
            "kafka_acls": None if self.kafka_acls is None else [a.json() for a in self.kafka_acls],
            "whitelist_ips": None if self.whitelist_ips is None else ",".join(self.whitelist_ips),
            "kafka_config": None if self.kafka is None else self.kafka.json(),
            "kafka_password": _reveal(self.kafka_password),
            "tool_profile": self.tool_profile,
            "allowed_tools": _list(self.allowed_tools),
            "blocked_tools": _list(self.blocked_tools),
        }
        return {name: value for name, value in fields.items() if value is not None}


def _list(values: tuple[str, ...] | None) -> list[str] | None:
    return None if values is None else list(values)


def _reveal(secret: SecretStr | None) -> str | None:
    return None if secret is None else secret.get_secret_value()
