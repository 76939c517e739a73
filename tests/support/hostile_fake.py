"""The independent fake API (tests/support/fake_api) behind a raw hostile server on 127.0.0.1,
for whole runs: every call goes to the fake, so keys really exist (and can be counted after the
run), but a test may put itself in front of chosen calls and answer otherwise.

    hostile = HostileFake(FakeApi(), hooks={("POST", "/project-keys"): without("kafka")})
    with hostile_server(hostile) as server:
        run_cli("apply", manifest, cwd=tmp_path, env=hostile.env(server.url))
        assert hostile.live() == ...

A hook gets the request and `call`, which runs the fake on it and gives `(status, value)`; it
answers whatever it likes (the fake's answer spoiled, or a refusal without calling the fake).
Every secret either side ever sent is kept in `secrets`, for the no-leak assertions.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.support.fake_api import ACTIVE, CREATING, FakeApi, FakeKey, ServedFake
from tests.support.fake_api.checks import Refused
from tests.support.fake_api.state import ADMIN_SECRET, ROLES
from tests.support.hostile import Answer, Request, json_answer

Call = Callable[[], tuple[int, Any]]
Hook = Callable[[Request, Call], Answer]
#: JSON fields that carry a secret, in requests and answers.
# A Kafka username is half of a login: kept out of every line like the secrets.
SECRET_FIELDS = frozenset(
    {"secret", "client_secret", "password", "kafka_password", "username", "kafka_username"}
)
_ONE = re.compile(r"^(/project-keys|/auth/client-credentials)/([^/]+)$")


@dataclass
class HostileFake:
    """The raw server's handler: `hooks` by (method, route), the route with `{id}` for one item
    (`("PATCH", "/project-keys/{id}")`)."""

    fake: FakeApi = field(default_factory=FakeApi)
    hooks: dict[tuple[str, str], Hook] = field(default_factory=dict)
    secrets: set[str] = field(default_factory=lambda: {ADMIN_SECRET})

    def env(self, url: str, **extra: str) -> dict[str, str]:
        """The environment of a provisioner subprocess pointed at this server."""
        return ServedFake(url, self.fake).env(**extra)

    def live(self) -> list[FakeKey]:
        """Keys that are live (`creating` or `active`): not deleted, not on their way out."""
        with self.fake.lock:
            return [key for key in self.fake.keys.values() if key.status in (ACTIVE, CREATING)]

    def __call__(self, request: Request) -> Answer:
        path = request.path.split("?", 1)[0]
        one = _ONE.match(path)
        route, item = (f"{one[1]}/{{id}}", one[2]) if one else (path, "")
        body = json.loads(request.body) if request.body else None
        self._keep(body)
        base = f"http://{request.headers.get('host', '127.0.0.1')}"

        def call() -> tuple[int, Any]:
            with self.fake.lock:
                self.fake.calls.append((request.method, path))
                try:
                    if route not in ("/auth/access-token", "/auth/access-token/refresh"):
                        self.fake.caller(request.headers.get("authorization"))
                    answer = self._route(request.method, route, body, item, base)
                except Refused as refused:
                    return refused.status, {"detail": refused.detail}
            status, value = answer if isinstance(answer, tuple) else (200, answer)
            self._keep(value)
            return status, value

        hook = self.hooks.get((request.method, route))
        if hook is not None:
            return hook(request, call)
        status, value = call()
        return json_answer(status, value) if value is not None else Answer(status)

    def _route(self, method: str, route: str, body: Any, item: str, base: str) -> Any:
        fake, keys = self.fake, self.fake.project_keys
        routes: dict[tuple[str, str], Callable[[], Any]] = {
            ("POST", "/auth/access-token"): lambda: fake.login(body),
            ("POST", "/auth/access-token/refresh"): lambda: fake.refresh(body),
            ("GET", "/auth/roles"): lambda: ROLES,
            ("GET", "/auth/client-credentials"): fake.list_credentials,
            ("POST", "/auth/client-credentials"): lambda: (201, fake.create_credential(body)),
            ("PATCH", "/auth/client-credentials/{id}"): lambda: fake.patch_credential(item, body),
            ("DELETE", "/auth/client-credentials/{id}"): lambda: fake.delete_credential(item),
            ("GET", "/project-keys"): keys.listing,
            ("POST", "/project-keys"): lambda: (201, keys.create(body, base)),
            ("GET", "/project-keys/{id}"): lambda: keys.detail(item),
            ("PATCH", "/project-keys/{id}"): lambda: keys.patch(item, body, base),
            ("DELETE", "/project-keys/{id}"): lambda: keys.delete(item),
        }
        handler = routes.get((method, route))
        if handler is None:
            raise Refused(404, "Not Found")
        return handler()

    def _keep(self, value: Any) -> None:
        """Remember every secret in a JSON value (a request's body or the fake's answer)."""
        if isinstance(value, dict):
            for name, inner in value.items():
                if name in SECRET_FIELDS and isinstance(inner, str) and "*" not in inner:
                    self.secrets.add(inner)
                else:
                    self._keep(inner)
        elif isinstance(value, list):
            for inner in value:
                self._keep(inner)


def without(*parts: str) -> Hook:
    """The fake's answer with `parts` (top-level fields) left out: a key made, its secrets not
    shown."""

    def hook(request: Request, call: Call) -> Answer:
        status, value = call()
        if isinstance(value, dict):
            value = {name: inner for name, inner in value.items() if name not in parts}
        return json_answer(status, value)

    return hook


def refuse(status: int, *, echo: bool = True) -> Hook:
    """Refuse without calling the fake (nothing made), the whole request body in `detail` when
    `echo` (as many APIs do: the password sent comes back)."""

    def hook(request: Request, call: Call) -> Answer:
        detail = request.body.decode() if echo else "refused"
        return json_answer(status, {"detail": detail})

    return hook
