"""Builders shared by the unit tests: desired credentials, an API client on the simulator, and a
plain HTTP client on any in-process app."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import anyio
import httpx
from pydantic import SecretStr

from provisioner.http.retry import Sleep
from provisioner.model import CredentialKind, DesiredCredential, KafkaAccess, McpScope, Origin
from provisioner.runtime import Halt
from provisioner.simulator import ADMIN_CLIENT_ID, ADMIN_SECRET, SimulatorState, create_app
from provisioner.streamkap import ApiConfig, Requests, StreamkapClient

ORIGIN = Origin("m.yaml", 0, ())


def desired(
    name: str = "ingest",
    *,
    service: str = "api",
    roles: tuple[str, ...] = ("role-admin",),
    permissions: tuple[str, ...] = (),
    sinks: tuple[str, ...] = ("local",),
    rotate_after: timedelta | None = None,
    grace: timedelta = timedelta(0),
    service_id: str | None = None,
    description: str | None = None,
) -> DesiredCredential:
    """A desired credential with its roles already resolved (role references are ids)."""
    return DesiredCredential(
        service=service,
        name=name,
        description=description,
        service_id=service_id,
        roles=roles,
        permission_ids=permissions,
        sinks=sinks,
        rotate_after=rotate_after,
        grace=grace,
        origin=ORIGIN,
        roles_origin=ORIGIN,
        role_ids=roles,
    )


def project_key(
    name: str = "stream",
    *,
    service: str = "orders-reader",
    roles: tuple[str, ...] = ("role-read-only",),
    permissions: tuple[str, ...] = (),
    kafka: KafkaAccess | None = None,
    mcp: McpScope | None = None,
    description: str | None = None,
) -> DesiredCredential:
    """A desired project key (roles already resolved); `roles=()` and no permissions: no API
    access."""
    base = desired(
        name, service=service, roles=roles, permissions=permissions, description=description
    )
    return dataclasses.replace(base, kind=CredentialKind.PROJECT_KEY, kafka=kafka, mcp=mcp)


async def no_sleep(_: float) -> None:
    """An injected sleep for retries and backoff: tests never wait."""
    return


@asynccontextmanager
async def asgi_client(app: Any, base_url: str, **options: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A plain HTTP client that sends its requests straight to `app`, in this process."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=base_url, **options) as client:
        yield client


@asynccontextmanager
async def sim_client(
    state: SimulatorState,
    transport: httpx.AsyncBaseTransport | None = None,
    *,
    sleep: Sleep = anyio.sleep,
    clock: Callable[[], float] = time.monotonic,
    halt: Halt | None = None,
    **config: Any,
) -> AsyncIterator[StreamkapClient]:
    """A client logged in to the in-process simulator (or through a wrapping transport).

    `config` is ApiConfig's fields; the simulator's admin credential unless it names another.
    """
    config.setdefault("client_id", ADMIN_CLIENT_ID)
    config.setdefault("secret", SecretStr(ADMIN_SECRET))
    transport = transport or httpx.ASGITransport(app=create_app(state))
    requests = Requests(
        ApiConfig("http://sim", **config), transport=transport, sleep=sleep, clock=clock, halt=halt
    )
    async with StreamkapClient(requests) as client:
        yield client
