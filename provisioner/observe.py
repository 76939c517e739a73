"""Observe the world before planning: remote credentials once, and what each sink holds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import anyio

from provisioner.errors import SinkError
from provisioner.model import DesiredCredential, RemoteCredential
from provisioner.plan import Holdings
from provisioner.sinks import Sink
from provisioner.streamkap import StreamkapClient


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


class FreshListing:
    """Lists remote credentials for ambiguous-create recovery, sharing one call between tasks.

    A caller must see a listing that *started* after its own failed attempt, so each listing is
    numbered when it starts and reused only by callers whose failure came before that number.
    """

    def __init__(self, client: StreamkapClient) -> None:
        self._client = client
        self._lock = anyio.Lock()
        self._started = 0
        self._latest: tuple[int, list[RemoteCredential]] = (0, [])

    def ticket(self) -> int:
        """Take right after a failed attempt; pass to `after`."""
        return self._started

    async def after(self, ticket: int) -> list[RemoteCredential]:
        async with self._lock:
            generation, listing = self._latest
            if generation > ticket:
                return listing
            self._started += 1
            generation = self._started
            listing = await self._client.list_credentials()
            self._latest = (generation, listing)
            return listing
