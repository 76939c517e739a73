"""One view of two servers for the project-key end-to-end tests: the simulator and the independent
fake (tests/support/fake_api), both on real sockets. A test asks a `World` what the tenant holds
(keys with their secrets, client credentials) and which writes it received, whichever it is."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from provisioner.model import owner_key
from tests.support.fake_api import FakeApi, ServedFake, serve_fake
from tests.support.served import Served, served

WRITES = frozenset({"POST", "PATCH", "DELETE"})
#: Writes to these paths change the tenant; a token call does not.
TENANT_PATHS = ("/project-keys", "/auth/client-credentials")


@dataclass(frozen=True)
class Key:
    """A project key as the server holds it, secrets included."""

    id: str
    name: str
    status: str
    description: str | None
    api_client_id: str | None
    api_secret: str | None
    kafka_username: str | None
    kafka_password: str | None
    acls: frozenset[tuple[str, str, str, str]]
    tool_profile: str | None

    @classmethod
    def of(cls, record: Any) -> Key:
        """A server's own record of a key (the simulator's and the fake's spell these alike)."""
        return cls(
            id=record.id,
            name=record.name,
            status=record.status,
            description=record.description,
            api_client_id=record.api_client_id,
            api_secret=record.api_secret,
            kafka_username=record.kafka_username,
            kafka_password=record.kafka_password,
            acls=_acls(record.kafka_acls),
            tool_profile=record.tool_profile,
        )


@dataclass(frozen=True)
class Credential:
    """A client credential as the server holds it."""

    client_id: str
    secret: str
    description: str | None


class World(Protocol):
    """A served tenant: its URL, the CLI's environment for it, and what it holds."""

    @property
    def name(self) -> str: ...
    @property
    def url(self) -> str: ...

    def env(self, **extra: str) -> dict[str, str]: ...
    def project_keys(self) -> list[Key]: ...
    def credentials(self) -> list[Credential]: ...
    def writes(self) -> list[tuple[str, str]]: ...


def _acls(entries: object) -> frozenset[tuple[str, str, str, str]]:
    assert isinstance(entries, (list, tuple))
    return frozenset(
        (acl["resource"], acl["topic_name"], acl["resource_pattern_type"], acl["operation"])
        for acl in entries
    )


@dataclass
class SimulatorWorld:
    served: Served
    name: str = "simulator"

    @property
    def url(self) -> str:
        return self.served.url

    def env(self, **extra: str) -> dict[str, str]:
        return self.served.env(**extra)

    def project_keys(self) -> list[Key]:
        return [Key.of(record) for record in self.served.state.project_keys.live()]

    def credentials(self) -> list[Credential]:
        return [
            Credential(record.client_id, record.secret, record.description)
            for record in self.served.state.live()
        ]

    def writes(self) -> list[tuple[str, str]]:
        calls = self.served.state.calls()
        return [
            (call.method, call.path)
            for call in calls
            if call.method in WRITES and call.path.startswith(TENANT_PATHS)
        ]


@dataclass
class FakeWorld:
    served: ServedFake
    name: str = "fake"

    @property
    def url(self) -> str:
        return self.served.url

    def env(self, **extra: str) -> dict[str, str]:
        return self.served.env(**extra)

    def project_keys(self) -> list[Key]:
        with self.served.fake.lock:
            return [Key.of(key) for key in self.served.fake.keys.values()]

    def credentials(self) -> list[Credential]:
        with self.served.fake.lock:
            return [
                Credential(item.client_id, item.secret, item.description)
                for item in self.served.fake.client_credentials.values()
            ]

    def writes(self) -> list[tuple[str, str]]:
        with self.served.fake.lock:
            calls = list(self.served.fake.calls)
        return [
            (method, path)
            for method, path in calls
            if method in WRITES and path.startswith(TENANT_PATHS)
        ]


@contextmanager
def world(name: str) -> Iterator[World]:
    """The simulator (activation and deletion at once) or the fake, served on a real socket."""
    if name == "simulator":
        with served() as sim:
            sim.state.project_keys.activation_delay = 0
            sim.state.project_keys.deletion_delay = 0
            yield SimulatorWorld(sim)
    else:
        with serve_fake(FakeApi()) as fake:
            yield FakeWorld(fake)


def marked(world: World) -> dict[str, list[Key]]:
    """The keys of the provisioner (marked in their description), by credential key; a key
    being deleted is left out (it is neither live nor an orphan; the fake shows `deleting` to
    one read after a DELETE, the simulator not at all with a deletion delay of 0)."""
    found: dict[str, list[Key]] = {}
    for key in world.project_keys():
        owned = owner_key(key.description)
        if owned is not None and key.status != "deleting":
            found.setdefault(owned, []).append(key)
    return found


def login_works(url: str, client_id: str, secret: str) -> bool:
    """One login at the token endpoint (what a consumer with the secret does)."""
    answer = httpx.post(
        f"{url}/auth/access-token", json={"client_id": client_id, "secret": secret}, timeout=10
    )
    return answer.status_code == 200


def admin_client(world: World) -> httpx.Client:
    """A client logged in with the world's admin login, for calls made around the provisioner."""
    env = world.env()
    body = {"client_id": env["STREAMKAP_CLIENT_ID"], "secret": env["STREAMKAP_SECRET"]}
    token = httpx.post(f"{world.url}/auth/access-token", json=body, timeout=10).json()
    headers = {"Authorization": f"Bearer {token['accessToken']}"}
    return httpx.Client(base_url=world.url, headers=headers, timeout=10)
