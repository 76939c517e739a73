"""Observe the world before planning: remote credentials once, and what each sink holds."""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from typing import TypeVar

import anyio

from provisioner.errors import SinkError, first_error
from provisioner.reconcile.model import (
    DesiredCredential,
    Holdings,
    Observed,
    RemoteCredential,
    Role,
)
from provisioner.sinks import Sink
from provisioner.streamkap import StreamkapClient

T = TypeVar("T")


async def observe(
    client: StreamkapClient,
    desired: Sequence[DesiredCredential],
    sinks: Mapping[str, Sink],
    concurrency: int,
) -> Observed:
    """Roles, remote credentials and sink holdings, read at once: each is mostly waiting."""
    roles: list[Sequence[Role]] = []
    remote: list[Sequence[RemoteCredential]] = []
    held: list[tuple[Holdings, dict[str, SinkError]]] = []
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(_into, roles, client.list_roles())
            group.start_soon(_into, remote, client.list_credentials())
            group.start_soon(_into, held, read_holdings(desired, sinks, concurrency))
    except BaseExceptionGroup as failed:  # one failure cancels the other reads: report it alone
        raise first_error(failed) from None
    holdings, blocked = held[0]
    return Observed(roles[0], remote[0], holdings, blocked)


async def _into(results: list[T], call: Awaitable[T]) -> None:
    results.append(await call)


async def read_holdings(
    desired: Sequence[DesiredCredential], sinks: Mapping[str, Sink], concurrency: int
) -> tuple[Holdings, dict[str, SinkError]]:
    """For every desired credential, the client_id each readable sink it names holds.

    A sink that cannot be read for a credential is returned with that key rather than raised:
    that credential cannot be reconciled this run, the others can.
    """
    holdings: dict[str, dict[str, str | None]] = {c.key: {} for c in desired}
    unreadable: dict[str, SinkError] = {}
    reads = [
        (credential, sinks[name])
        for credential in desired
        for name in credential.sinks
        if sinks[name].readable
    ]
    send, receive = anyio.create_memory_object_stream[tuple[DesiredCredential, Sink]](len(reads))
    for item in reads:
        send.send_nowait(item)
    send.close()

    async def reader() -> None:
        async for credential, sink in receive:
            try:
                held = await sink.read(credential.service, credential.name)
            except SinkError as exc:
                unreadable.setdefault(credential.key, exc)
            else:
                holdings[credential.key][sink.name] = held

    async with receive, anyio.create_task_group() as group:
        for _ in range(max(1, min(concurrency, len(reads)))):
            group.start_soon(reader)
    return holdings, unreadable
