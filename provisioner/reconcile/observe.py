"""Observe the world before planning: remote credentials once, and what each sink holds."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import anyio
import structlog

from provisioner.errors import ApiError, ProvisionerError, SinkError, first_error
from provisioner.model import (
    Action,
    CredentialKind,
    DesiredCredential,
    Holdings,
    Kind,
    Observed,
    RemoteCredential,
    Role,
    SinkRecord,
)
from provisioner.runtime import for_each
from provisioner.sinks import Sink
from provisioner.streamkap import CredentialApi, StreamkapClient

T = TypeVar("T")
_COPIES = (Kind.RESTORE, Kind.REPLACE)
log = structlog.get_logger("provisioner.observe")


async def observe(
    client: StreamkapClient,
    desired: Sequence[DesiredCredential],
    sinks: Mapping[str, Sink],
    concurrency: int,
    *,
    failed_checks: Mapping[str, SinkError] | None = None,
    prune: bool = False,
) -> Observed:
    """Roles, remote credentials and sink holdings, read at once: each is mostly waiting.

    Project keys are listed always (a key whose `kind:` changed back leaves one to retire);
    unless a manifest asks for one, an API without them (404) or a login that may not read
    them (403) only means there are none.

    Each sink is checked first (`Sink.check`: once per sink, not once per credential), unless
    `failed_checks` gives the outcome of the session's checks; the credentials naming a sink that
    failed its check are blocked and their sinks not read.
    """
    roles: list[Sequence[Role]] = []
    remote: list[Sequence[RemoteCredential]] = []
    held: list[tuple[Holdings, dict[str, SinkError]]] = []
    recorded: dict[tuple[str, str], Recorded] = {}

    async def checked_then_read() -> None:
        failed = failed_checks
        if failed is None:
            failed = await check_sinks(sinks, client.requests.config.timeout)
        blocked: dict[str, SinkError] = {}
        for credential in desired:  # its first failing sink stands for it: one cause per key
            causes = [failed[name] for name in credential.sinks if name in failed]
            if causes:
                blocked[credential.key] = causes[0]
        readable = [c for c in desired if c.key not in blocked]
        holdings, unreadable, records = await read_holdings(readable, sinks, concurrency)
        recorded.update(records)
        held.append(({**{key: {} for key in blocked}, **holdings}, {**blocked, **unreadable}))

    try:
        async with anyio.create_task_group() as group:
            group.start_soon(_into, roles, client.list_roles())
            group.start_soon(_into, remote, list_remote(client, desired, prune=prune))
            group.start_soon(checked_then_read)
    except BaseExceptionGroup as failed:  # one failure cancels the other reads: report it alone
        raise first_error(failed) from None
    holdings, blocked = held[0]
    listed = with_recorded_permissions(remote[0], recorded)
    return Observed(roles[0], listed, whole_records(holdings, listed, recorded), blocked)


@dataclass(frozen=True, slots=True)
class Recorded:
    """What a sink's record of a project key says besides its identity (no secret)."""

    identity: str
    client_id: str | None  # its API access; None: the record holds none
    kafka_username: str | None  # its Kafka access; None: the record holds none
    permission_ids: frozenset[str]


def with_recorded_permissions(
    remote: Sequence[RemoteCredential], recorded: Mapping[tuple[str, str], Recorded]
) -> list[RemoteCredential]:
    """Project keys with the permissions their sinks' records say they were made with.

    The API lists no permissions of a key, and cannot change them: the record is the one place
    that says which a key has, so a manifest naming others is seen to differ (a replace). A
    record naming none says nothing (a sink whose layout keeps no permissions, the env sink's).
    """
    permissions = {r.identity: r.permission_ids for r in recorded.values() if r.permission_ids}
    return [
        dataclasses.replace(credential, permission_ids=permissions[credential.client_id])
        if credential.kind is CredentialKind.PROJECT_KEY
        and credential.permission_ids is None
        and credential.api_client_id is not None
        and credential.client_id in permissions
        else credential
        for credential in remote
    ]


def whole_records(
    holdings: Holdings,
    remote: Sequence[RemoteCredential],
    recorded: Mapping[tuple[str, str], Recorded],
) -> Holdings:
    """Holdings where a sink holding a project key's id but not all its accesses (a run killed
    after a PATCH added Kafka access, before delivering it) holds nothing: the secrets it lacks
    are lost, and the key is replaced (or restored from a sibling holding the whole record)."""
    keys = {c.client_id: c for c in remote if c.kind is CredentialKind.PROJECT_KEY}
    whole: dict[str, dict[str, str | None]] = {}
    for key, held in holdings.items():
        whole[key] = dict(held)
        for sink, identity in held.items():
            record, live = recorded.get((key, sink)), keys.get(identity or "")
            if record is not None and live is not None and not _holds_all(record, live):
                whole[key][sink] = None
    return whole


def _holds_all(record: Recorded, key: RemoteCredential) -> bool:
    """Whether the record holds each access the key shows (one it does not show, while being
    set up say, is not held against the record)."""
    if key.api_client_id is not None and record.client_id != key.api_client_id:
        return False
    kafka_username = key.kafka.username if key.kafka is not None else None
    return kafka_username is None or record.kafka_username == kafka_username


async def list_remote(
    client: StreamkapClient, desired: Sequence[DesiredCredential], *, prune: bool
) -> list[RemoteCredential]:
    """Every remote credential, of both kinds: a key whose `kind:` changed leaves one of the
    other kind to retire, and prune concerns both (see `observe`)."""
    wanted = {credential.kind for credential in desired}
    listed: list[Sequence[RemoteCredential]] = []

    async def project_keys() -> None:
        try:
            listed.append(await client.project_key_credentials.list())
        except ApiError as exc:
            # Needed when a manifest asks for a key. Without one they are listed to retire a
            # key whose `kind:` changed back (that can wait a run) and to prune: there, an API
            # without them (404) or a login that may not read them (403) means none to prune,
            # but an outage must not pass for "none".
            absent = exc.status in (403, 404)
            if CredentialKind.PROJECT_KEY in wanted or (prune and not absent):
                raise
            say = log.debug if absent and not prune else log.warning
            say("project_keys.unlisted", status=exc.status, detail="none listed, none pruned")

    async with anyio.create_task_group() as group:
        group.start_soon(_into, listed, client.credentials.list())
        group.start_soon(project_keys)
    return [credential for listing in listed for credential in listing]


async def check_sinks(
    sinks: Mapping[str, Sink], deadline: float | None = None
) -> dict[str, SinkError]:
    """Each sink's check, all at once: the sinks that cannot take writes, and why.

    Each check has `deadline` seconds, the API's (PROVISIONER_TIMEOUT): a sink that does not
    answer in that time fails its check, rather than holding up the plan.
    """
    failed: dict[str, SinkError] = {}

    async def check(name: str, sink: Sink) -> None:
        checker = getattr(sink, "check", None)  # sink plugins written before it may lack it
        problem: SinkError | None = None
        if checker is not None:
            with anyio.move_on_after(deadline) as scope:
                problem = await checker()
            if scope.cancelled_caught:
                problem = SinkError(
                    name, f"check: no answer within {deadline:g} s (PROVISIONER_TIMEOUT)"
                )
        if problem is not None:
            failed[name] = problem
            log.debug("sink.check_failed", sink=name, error=str(problem))

    async with anyio.create_task_group() as group:
        for name, sink in sinks.items():
            group.start_soon(check, name, sink)
    return failed


async def prove_sources(
    apis: Callable[[CredentialKind], CredentialApi],
    sinks: Mapping[str, Sink],
    actions: Sequence[Action],
    concurrency: int,
) -> tuple[dict[str, SinkRecord], frozenset[str]]:
    """For each planned restore, the source's record, its secret proven by one login with it
    (retried like any call: a transient failure is not a refusal).

    Returns the proven records by key, and the keys whose copy could not be proven (missing,
    another client_id, refused by the API, or unreadable): those are replaced instead.
    """
    # A rotation that would also refill a lost sink carries its source: should the budget
    # defer it, the sink is restored instead, so its copy is proven too.
    restores = [a for a in actions if a.kind in _COPIES and a.source is not None]
    proven: dict[str, SinkRecord] = {}

    async def prove(action: Action) -> None:
        record = await _proven(apis(action.credential_kind), sinks, action)
        if record is not None:
            proven[action.key] = record

    await for_each(restores, prove, concurrency)
    return proven, frozenset(a.key for a in restores if a.key not in proven)


async def _proven(
    credentials: CredentialApi, sinks: Mapping[str, Sink], action: Action
) -> SinkRecord | None:
    assert action.source is not None
    service, credential = action.key.split("/", 1)
    try:
        record = await sinks[action.source].read_record(service, credential)
        ok = (
            record is not None
            and record.identity == action.client_id
            and await credentials.verify(record)
        )
    except ProvisionerError as exc:
        log.warning("restore.unproven", key=action.key, source=action.source, error=str(exc))
        return None
    if not ok:
        log.warning("restore.unproven", key=action.key, source=action.source, error="refused")
        return None
    return record


async def _into(results: list[T], call: Awaitable[T]) -> None:
    results.append(await call)


async def read_holdings(
    desired: Sequence[DesiredCredential], sinks: Mapping[str, Sink], concurrency: int
) -> tuple[Holdings, dict[str, SinkError], dict[tuple[str, str], Recorded]]:
    """For every desired credential, the identity each readable sink it names holds; and, for
    project keys, what each held record says besides (by key and sink: see `Recorded`).

    A sink that cannot be read for a credential is returned with that key rather than raised:
    that credential cannot be reconciled this run, the others can.
    """
    recorded: dict[tuple[str, str], Recorded] = {}
    holdings: dict[str, dict[str, str | None]] = {c.key: {} for c in desired}
    unreadable: dict[str, SinkError] = {}
    reads = [
        (credential, sinks[name])
        for credential in desired
        for name in credential.sinks
        if sinks[name].readable
    ]

    async def read(item: tuple[DesiredCredential, Sink]) -> None:
        credential, sink = item
        try:
            if credential.kind is CredentialKind.PROJECT_KEY:
                record = await sink.read_record(credential.service, credential.name)
                held = None if record is None else record.identity
                if record is not None:
                    recorded[credential.key, sink.name] = _recorded(record)
            else:
                held = await sink.read(credential.service, credential.name)
        except SinkError as exc:
            unreadable.setdefault(credential.key, exc)
        else:
            holdings[credential.key][sink.name] = held

    await for_each(reads, read, concurrency)
    return holdings, unreadable, recorded


def _recorded(record: SinkRecord) -> Recorded:
    kafka_username = record.kafka.username if record.kafka is not None else None
    return Recorded(
        record.identity, record.client_id, kafka_username, frozenset(record.permission_ids)
    )
