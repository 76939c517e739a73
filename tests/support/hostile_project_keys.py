"""A small hostile `/project-keys` API for tests: each call answers what the test chose.

Served by `hostile.hostile_server` on 127.0.0.1, so the client's whole request path (transport,
retry, error mapping, redaction) meets the answer exactly as sent. Calls a test did not choose an
answer for are 404s, which the client reads as "no such key".
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretStr

from provisioner.http.retry import Sleep
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


def client_of(
    url: str,
    *,
    sleep: Sleep = no_sleep,
    clock: Callable[[], float] = time.monotonic,
    activation_timeout: float = 300.0,
) -> StreamkapClient:
    """A client of the hostile server, with a ready token (no login) and no waits (unless the
    test gives a `sleep`, and the `clock` it moves)."""
    config = ApiConfig(
        url,
        access_token=SecretStr("hostile-token"),
        max_attempts=2,
        activation_timeout=activation_timeout,
    )
    return StreamkapClient(Requests(config, sleep=sleep, clock=clock))


class FakeTime:
    """A clock that moves only when the client sleeps: a wait of minutes costs nothing."""

    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


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


def file_for(request: Request, **changes: Any) -> dict[str, Any]:
    """The one-time file of a create, for the Kafka user (and password) the request asked for:
    what a well-behaved API answers, before a test spoils some part of it."""
    asked = json.loads(request.body)
    kafka = asked.get("kafka_config")
    return {
        "project_key_id": KEY_ID,
        "api": {"client_id": "cc_hostile", "client_secret": API_SECRET},
        "kafka": None
        if kafka is None
        else {
            "username": kafka["username"],
            "password": kafka["password"],
            "bootstrap_servers": "kafka.hostile.invalid:9094",
        },
        **changes,
    }


def not_found(request: Request) -> Answer:
    return json_answer(404, {"detail": "Not Found"})


@dataclass
class ProjectKeysApi:
    """The handler: `create`, `patch` and `detail` (GET of one key) answer those calls; every
    call is kept (`calls`: method and path; `bodies`: its JSON body)."""

    create: Reply = field(default=not_found)
    patch: Reply = field(default=not_found)
    detail: Reply = field(default=not_found)
    bodies: list[Any] = field(default_factory=list)
    calls: list[tuple[str, str]] = field(default_factory=list)

    def __call__(self, request: Request) -> Answer:
        self.bodies.append(json.loads(request.body) if request.body else None)
        self.calls.append((request.method, request.path))
        one_key = request.path.startswith("/project-keys/")
        if request.method == "POST" and request.path == "/project-keys":
            return self.create(request)
        if request.method == "PATCH" and one_key:
            return self.patch(request)
        if request.method == "GET" and one_key:
            return self.detail(request)
        return not_found(request)


def echo_body(status: int) -> Reply:
    """Refuse with `status`, repeating the whole request body in `detail` (as many APIs do)."""
    return lambda request: json_answer(status, {"detail": request.body.decode()})
