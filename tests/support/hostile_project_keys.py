"""A small hostile `/project-keys` API for tests: each call answers what the test chose.

Served by `hostile.hostile_server` on 127.0.0.1, so the client's whole request path (transport,
retry, error mapping, redaction) meets the answer exactly as sent. Calls a test did not choose an
answer for are 404s, which the client reads as "no such key".
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretStr

from provisioner.streamkap import ApiConfig, Requests, StreamkapClient
from provisioner.streamkap.project_key_answers import KafkaAcl
from provisioner.streamkap.project_key_bodies import KafkaConfig, NewProjectKey
from tests.support.factories import no_sleep
from tests.support.hostile import Answer, Request, json_answer

KEY_ID = "pk_hostile"
API_SECRET = "api-secret-from-the-file-9f3e2d1c"
#: The password a test's create or PATCH sends (12-128 characters, as the API wants).
PASSWORD = "kafka-password-sent-7a6b5c4d"

Reply = Callable[[Request], Answer]


def client_of(url: str) -> StreamkapClient:
    """A client of the hostile server, with a ready token (no login) and no waits."""
    config = ApiConfig(url, access_token=SecretStr("hostile-token"), max_attempts=2)
    return StreamkapClient(Requests(config, sleep=no_sleep))


def kafka_key(name: str = "orders-reader") -> NewProjectKey:
    """A create asking for API access (a role) and Kafka access (a user with PASSWORD)."""
    kafka = KafkaConfig(
        username="orders-reader-g1",
        password=SecretStr(PASSWORD),
        acls=(KafkaAcl("orders.", "READ", "PREFIXED"),),
    )
    return NewProjectKey(name=name, role_ids=("role-read-only",), kafka=kafka)


def detail(**changes: Any) -> dict[str, Any]:
    """A documented `GET /project-keys/{id}` answer for KEY_ID."""
    return {
        "id": KEY_ID,
        "name": "orders-reader",
        "service_id": "svc-1",
        "status": "active",
        "description": None,
        "created_at": "2024-01-01T00:00:00Z",
        "api_client_id": "cc_hostile",
        "kafka_username": None,
        "roles": [{"id": "role-read-only", "key": "ReadOnly", "name": "Read Only"}],
        "last_used_at": None,
        "tool_profile": None,
        "allowed_tools": [],
        "blocked_tools": [],
        "kafka_acls": [],
        "whitelist_ips": None,
        "kafka_proxy_endpoint": None,
        "schema_proxy_endpoint": None,
        **changes,
    }


@dataclass
class ProjectKeysApi:
    """The handler: `create` and `patch` answer those calls; every call is kept."""

    create: Reply = field(default=lambda request: json_answer(404, {"detail": "Not Found"}))
    patch: Reply = field(default=lambda request: json_answer(404, {"detail": "Not Found"}))
    bodies: list[Any] = field(default_factory=list)

    def __call__(self, request: Request) -> Answer:
        self.bodies.append(json.loads(request.body) if request.body else None)
        if request.method == "POST" and request.path == "/project-keys":
            return self.create(request)
        if request.method == "PATCH" and request.path.startswith("/project-keys/"):
            return self.patch(request)
        return json_answer(404, {"detail": "Not Found"})


def echo_body(status: int) -> Reply:
    """Refuse with `status`, repeating the whole request body in `detail` (as many APIs do)."""
    return lambda request: json_answer(status, {"detail": request.body.decode()})
