"""Carry out a plan: concurrent, bounded, every credential its own unit of work."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import anyio
import structlog

from provisioner.errors import (
    AmbiguousCreate,
    PatchUnsupported,
    PermissionDenied,
    ProvisionerError,
    SinkError,
    UnusableAccess,
    UnusableCreate,
)
from provisioner.http.retry import Sleep, retrying
from provisioner.logs import redact
from provisioner.model import (
    Action,
    Allowance,
    CreatedCredential,
    CredentialKind,
    DesiredCredential,
    Kind,
    Outcome,
    Reason,
    RemoteCredential,
    SinkRecord,
    State,
    Status,
)
from provisioner.runtime import Halt, Observer, Unobserved, for_each
from provisioner.sinks import Previous, Sink
from provisioner.streamkap import CredentialApi

log = structlog.get_logger("provisioner.reconcile.engine")

WORKERS_PER_REQUEST = 2
#: With project keys being made with Kafka access: each waits seconds for Streamkap to set it up
#: (`creating`) holding no connection, so many more are kept in progress; the request path still
#: bounds what is in flight.
WORKERS_PER_REQUEST_WAITING = 8


@dataclass
class Engine:
    """Runs write actions, up to twice `concurrency` credentials in progress at once."""

    credentials: CredentialApi  # client credentials
    sinks: Mapping[str, Sink]
    concurrency: int
    max_attempts: int = 6
    sleep: Sleep = anyio.sleep
    # Read before each action: once set (a signal, a 403, the API down), actions not yet
    # started are skipped with its reason; those in flight finish.
    halt: Halt = field(default_factory=Halt)
    observer: Observer = field(default_factory=Unobserved)
    # Actions failing in a row, after their retries, that mean the API or a sink is down.
    failure_limit: int = 10
    # Restore: the record each key's source sink holds, its secret proven before planning ended.
    records: Mapping[str, SinkRecord] = field(default_factory=dict)
    # What the change budget leaves for updates the API can only make as replaces.
    allowance: Allowance = field(default_factory=lambda: Allowance(None))
    # Project keys' API; None when the manifests ask for none (and none are to be deleted).
    project_keys: CredentialApi | None = None

    def __post_init__(self) -> None:
        self._apis: dict[CredentialKind, CredentialApi] = {
            CredentialKind.CLIENT_CREDENTIAL: self.credentials
        }
        if self.project_keys is not None:
            self._apis[CredentialKind.PROJECT_KEY] = self.project_keys
        self._listings = {kind: FreshListing(api) for kind, api in self._apis.items()}
        self._failures_in_row = 0

    def _api(self, kind: CredentialKind) -> CredentialApi:
        api = self._apis.get(kind)
        if api is None:  # the pipeline gives every API its plan names
            raise ProvisionerError(f"no API for {kind} credentials in this run")
        return api

    async def execute(self, actions: Sequence[Action]) -> list[Outcome]:
        """Carry out every write action; one failure never stops the others."""
        outcomes: list[Outcome] = []

        async def work(action: Action) -> None:
            outcome = await self._run(action)
            self._watch(outcome)
            outcomes.append(outcome)
            self.observer.on_outcome(outcome)

        # More credentials in progress than requests in flight (the client's limit): while some
        # deliver their secrets (or wait for their key to be set up), others keep every
        # connection busy.
        todo = [action for action in actions if action.writes]
        waiting = any(_waits_for_activation(action) for action in todo)
        per_request = WORKERS_PER_REQUEST_WAITING if waiting else WORKERS_PER_REQUEST
        await for_each(todo, work, self.concurrency * per_request)
        return outcomes

    def _watch(self, outcome: Outcome) -> None:
        """When everything fails, stop starting work rather than grind on."""
        if outcome.status is Status.OK:
            self._failures_in_row = 0
        elif outcome.status is Status.FAILED:
            self._failures_in_row += 1
            if self._failures_in_row == self.failure_limit and not self.halt.is_set():
                self.halt.set(
                    f"not started: {self.failure_limit} actions in a row failed "
                    f"(last: {outcome.error})"
                )
                log.error("run.circuit_open", failures=self._failures_in_row, error=outcome.error)

    async def _run(self, action: Action) -> Outcome:
        if self.halt.is_set():
            return Outcome(action, Status.SKIPPED, error=self.halt.reason)
        started = time.perf_counter()
        bound = log.bind(key=action.key, action=str(action.kind), reason=str(action.reason))
        try:
            client_id = await self._perform(action)
        except OverBudget as exc:
            bound.warning("credential.deferred", detail=str(exc), duration=_since(started))
            return Outcome(action, Status.DEFERRED, error=str(exc))
        except PermissionDenied as exc:
            # Every other write would be refused too: start nothing more, and end the run.
            self.halt.set(f"not started: {exc}", exc)
            bound.error("credential.failed", error=str(exc), duration=_since(started))
            return Outcome(action, Status.FAILED, error=str(exc))
        except ProvisionerError as exc:
            bound.error("credential.failed", error=str(exc), duration=_since(started))
            return Outcome(action, Status.FAILED, error=str(exc))
        except Exception as exc:  # a bug or an odd answer fails this credential, not the run
            error = redact(f"unexpected {type(exc).__name__}: {exc}")
            bound.error("credential.failed", error=error, duration=_since(started), exc_info=True)
            return Outcome(action, Status.FAILED, error=error)
        bound.info(
            f"credential.{_past(action, client_id)}", client_id=client_id, duration=_since(started)
        )
        return Outcome(action, Status.OK, client_id=client_id)

    async def _perform(self, action: Action) -> str | None:
        if action.kind is Kind.DELETE:
            assert action.client_id is not None
            await self._api(action.credential_kind).delete(action.client_id)
            if action.reason is Reason.ORPHAN:
                await self._clean_sinks(action.key, action.client_id)
            return action.client_id
        assert action.desired is not None
        if action.kind is Kind.RESTORE:
            await self._copy_record(action, action.desired)
            return action.client_id
        api = self._api(action.desired.kind)
        known = {cid for cid in (action.client_id, *action.retire, *action.known) if cid}
        if action.kind is Kind.UPDATE:
            try:
                if await self._updated(action):
                    return action.client_id
            except AccessUndone:
                return await self._recreate(action.desired, known)
            if not self.allowance.take():  # a replace the plan did not count: re-checked here
                raise OverBudget(
                    "the API cannot change roles in place, and a replace is beyond the change "
                    "budget this run; a later run replaces it"
                )
        created = await self._create(action.desired, known)
        await self._deliver_or_undo(action.desired, created)
        for old in action.retire:
            await api.delete(old)
        return created.remote.client_id

    async def _updated(self, action: Action) -> bool:
        """Change it in place; False when the API cannot (then the caller replaces).

        An access the change added (a project key given Kafka or API access) is delivered to
        every sink with the secrets the sinks already hold; if that fails, or the PATCH's answer
        lacks the new secrets (UnusableAccess), the key is deleted: AccessUndone. A key still
        `creating` after the adapter's wait is delivered, then the action fails.
        """
        assert action.desired is not None
        assert action.client_id is not None
        api = self._api(action.desired.kind)
        try:
            added = await api.update(action.client_id, action.desired)
        except PatchUnsupported:
            return False
        except UnusableAccess as exc:
            # The PATCH may have made an access whose secrets no sink will ever get (the answer
            # did not show them): as after a failed delivery, the key goes and is made anew.
            log.warning("access.undo", key=action.key, client_id=exc.key_id, error=str(exc))
            with anyio.CancelScope(shield=True):
                await api.delete(exc.key_id)
            raise AccessUndone(str(exc)) from None
        if added is None:
            await self._refresh_records(action.desired, action.client_id, action.targets)
            return True
        await self._deliver_added(action, action.desired, added)
        if added.remote.state is not State.ACTIVE:
            # Delivered all the same: its secrets are shown once, and its API access is the one
            # the sinks already hold. But a key is converged only once active (as a create).
            raise ProvisionerError(
                f"added access to {action.key} ({action.client_id}) and delivered it, but the "
                f"key is {added.remote.state} after the activation wait; the next run looks again"
            )
        return True

    async def _deliver_added(
        self, action: Action, desired: DesiredCredential, added: CreatedCredential
    ) -> None:
        """Deliver an access a PATCH just added, beside the secrets each sink holds; if a sink
        still fails, put every sink back and delete the key (no PATCH takes an access back):
        its new secret must not outlive the run. Then AccessUndone: the caller makes it anew."""
        key_id = added.remote.client_id
        readable = [self.sinks[name] for name in action.targets]
        held = await self._held_record(readable, desired, key_id)
        base = refreshed(desired, held) if held is not None else new_record(desired, added)
        record = dataclasses.replace(
            base,
            client_id=added.api_client_id if added.secret is not None else base.client_id,
            secret=added.secret or base.secret,
            kafka=added.kafka or base.kafka,
            project_key_id=key_id,
        )
        failures, delivered = await self._deliver_all(desired, record)
        if not failures:
            return
        log.warning("access.undo", key=desired.key, client_id=key_id, error=str(failures[0]))
        undo_error = await self._undo(desired, key_id, delivered)
        if undo_error is not None:
            raise SinkError(failures[0].sink, f"{failures[0]}; and the undo failed: {undo_error}")
        raise AccessUndone(str(failures[0]))

    async def _recreate(self, desired: DesiredCredential, known: set[str]) -> str:
        """After an added access was undone (its key deleted): a new key, delivered or undone."""
        created = await self._create(desired, known)
        await self._deliver_or_undo(desired, created)
        return created.remote.client_id

    async def _refresh_records(
        self, desired: DesiredCredential, client_id: str, targets: Sequence[str]
    ) -> None:
        """After an update in place: rewrite the record in every readable sink, with the same
        client_id and secret and the manifest's fields (roles, description), as a restore does.

        The plan names them (`targets`); a write-only sink (standard output) is not among them:
        it would print the secret again.
        """
        readable = [self.sinks[name] for name in targets]
        held = await self._held_record(readable, desired, client_id)
        if held is None:
            return
        record = refreshed(desired, held)
        for sink in readable:
            try:
                async for attempt in retrying(
                    self.max_attempts, self.sleep, "refresh", sink=sink.name
                ):
                    with attempt:
                        await sink.write(record)
            except SinkError as exc:
                raise SinkError(sink.name, f"updated {client_id} in place, but {exc}") from None

    async def _held_record(
        self, sinks: Sequence[Sink], desired: DesiredCredential, client_id: str
    ) -> SinkRecord | None:
        """The record of `client_id` the first of `sinks` holding it has (the secret is in it)."""
        for sink in sinks:
            try:
                record = await sink.read_record(desired.service, desired.name)
            except SinkError as exc:
                raise SinkError(sink.name, f"updated {client_id} in place, but {exc}") from None
            if record is not None and record.identity == client_id:
                return record
        if sinks:  # the plan saw every readable sink hold it: one lost it since
            shown = ", ".join(sink.name for sink in sinks)
            raise SinkError(
                sinks[0].name,
                f"updated {client_id} in place, but no sink ({shown}) holds its record to refresh",
            )
        return None

    async def _copy_record(self, action: Action, desired: DesiredCredential) -> None:
        """Copy the proven record to the sinks that lack it; no API call, nothing to undo."""
        source = self.records.get(action.key)
        if source is None or source.identity != action.client_id:
            raise SinkError(str(action.source), f"no proven record of {action.client_id} to copy")
        # The source's credential and secrets, in the layout of a fresh record.
        record = refreshed(desired, source)
        for name in action.targets:
            sink = self.sinks[name]
            async for attempt in retrying(self.max_attempts, self.sleep, "restore", sink=name):
                with attempt:
                    await sink.write(record)

    async def _clean_sinks(self, key: str, client_id: str) -> None:
        """After an orphan's delete: remove its record from every readable sink still holding it.

        Each sink deletes only if it holds that `client_id`, so a record of a newer credential
        of the same key stays.
        """
        service, credential = key.split("/", 1)
        failures: list[SinkError] = []

        async def clean(sink: Sink) -> None:
            try:
                await sink.delete(service, credential, client_id)
            except SinkError as exc:
                failures.append(exc)

        async with anyio.create_task_group() as group:
            for sink in self.sinks.values():
                if sink.readable:
                    group.start_soon(clean, sink)
        if failures:
            raise SinkError(failures[0].sink, f"deleted {client_id}, but {failures[0]}")

    async def _create(self, desired: DesiredCredential, known: set[str]) -> CreatedCredential:
        """Create; after an unknown outcome, delete what the lost attempt made, then try again."""
        api, listing = self._api(desired.kind), self._listings[desired.kind]
        for attempt in range(1, self.max_attempts + 1):
            try:
                return await api.create(desired)
            except UnusableCreate as exc:
                # Its secret must reach no sink: the credential goes before the action fails.
                log.error("create.unusable", key=desired.key, client_id=exc.client_id)
                with anyio.CancelScope(shield=True):
                    await api.delete(exc.client_id)
                raise
            except AmbiguousCreate as exc:
                ticket = listing.ticket()
                log.warning("create.ambiguous", key=desired.key, attempt=attempt, error=str(exc))
                # Even when giving up: a credential the lost attempt made must not outlive us.
                await self._remove_leftovers(desired, known, ticket)
                if attempt == self.max_attempts:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _remove_leftovers(
        self, desired: DesiredCredential, known: set[str], ticket: int
    ) -> None:
        """Delete what a lost create made: the key is owner-qualified, so no other owner's goes."""
        key, api = desired.owned_key, self._api(desired.kind)
        for credential in await self._listings[desired.kind].after(ticket):
            if credential.key == key and credential.client_id not in known:
                log.warning("create.leftover_deleted", key=key, client_id=credential.client_id)
                await api.delete(credential.client_id)

    async def _deliver_or_undo(
        self, desired: DesiredCredential, created: CreatedCredential
    ) -> None:
        """Write to every sink concurrently; if any still fails, take the credential back."""
        failures, delivered = await self._deliver_all(desired, new_record(desired, created))
        if failures:
            undo_error = await self._undo(desired, created.remote.client_id, delivered)
            if undo_error is not None:
                raise SinkError(
                    failures[0].sink, f"{failures[0]}; and the undo failed: {undo_error}"
                )
            raise failures[0]

    async def _deliver_all(
        self, desired: DesiredCredential, record: SinkRecord
    ) -> tuple[list[SinkError], list[tuple[Sink, Previous]]]:
        """Write to every sink concurrently: what failed, and each sink written with what it
        held before."""
        failures: list[SinkError] = []
        delivered: list[tuple[Sink, Previous]] = []  # each sink, and what the write replaced

        async def deliver(sink: Sink) -> None:
            try:
                async for attempt in retrying(
                    self.max_attempts, self.sleep, "deliver", sink=sink.name
                ):
                    with attempt:
                        previous = await sink.write(record)
                delivered.append((sink, previous))
            except SinkError as exc:
                failures.append(exc)
            except Exception as exc:  # e.g. a plugin sink that lets an OSError through
                failures.append(SinkError(sink.name, f"unexpected {type(exc).__name__}: {exc}"))

        if len(desired.sinks) == 1:  # the usual case: no task group needed
            await deliver(self.sinks[desired.sinks[0]])
        else:
            async with anyio.create_task_group() as group:
                for name in desired.sinks:
                    group.start_soon(deliver, self.sinks[name])
        return failures, delivered

    async def _undo(
        self,
        desired: DesiredCredential,
        client_id: str,
        delivered: list[tuple[Sink, Previous]],
    ) -> ProvisionerError | None:
        """Put back what each sink held before, then delete the credential `client_id`; return
        what failed, if anything. A replace's consumers so keep the old secret, which stays
        live."""
        log.warning("credential.undo", key=desired.key, client_id=client_id)
        failed: ProvisionerError | None = None
        with anyio.CancelScope(shield=True):
            # Sinks first: a sink never holds the new secret after the credential is gone.
            for sink, previous in delivered:
                failed = failed or await self._restore(desired, client_id, sink, previous)
            try:
                await self._api(desired.kind).delete(client_id)
            except ProvisionerError as exc:  # the next run deletes it as a credential no sink holds
                log.error("credential.undo_failed", key=desired.key, error=str(exc))
                failed = failed or exc
        return failed

    async def _restore(
        self, desired: DesiredCredential, client_id: str, sink: Sink, previous: Previous
    ) -> ProvisionerError | None:
        """Undo one sink's write of `client_id`; the error, if it could not be undone."""
        try:
            await sink.restore(desired.service, desired.name, client_id, previous)
        except SinkError as exc:
            log.error("sink.undo_failed", key=desired.key, sink=sink.name, error=str(exc))
            return exc
        except Exception as exc:  # a plugin sink that lets an OSError through
            error = redact(f"unexpected {type(exc).__name__}: {exc}")
            log.error("sink.undo_failed", key=desired.key, sink=sink.name, error=error)
            return SinkError(sink.name, error)
        log.info("sink.restored", key=desired.key, sink=sink.name, client_id=previous.client_id)
        return None


class OverBudget(Exception):
    """A change the plan did not count (an update turned replace) and the budget cannot take."""


class AccessUndone(Exception):
    """An access a PATCH added could not be delivered: its key was deleted, to be made anew."""


def new_record(desired: DesiredCredential, created: CreatedCredential) -> SinkRecord:
    """The record every sink stores for a credential just made: its ids and secrets, and the
    manifest's fields."""
    made = created.remote
    project_key = made.kind is CredentialKind.PROJECT_KEY
    return SinkRecord(
        service=desired.service,
        credential=desired.name,
        client_id=created.api_client_id if created.secret is not None else None,
        secret=created.secret,
        description=desired.description,
        role_ids=desired.role_ids,
        permission_ids=desired.permission_ids,
        service_id=desired.service_id,
        created_at=(made.created_at or datetime.now(UTC)).isoformat(),
        project_key_id=made.client_id if project_key else None,
        kafka=created.kafka,
    )


def refreshed(desired: DesiredCredential, held: SinkRecord) -> SinkRecord:
    """A held record (its ids, secrets and creation time) with the manifest's fields as now."""
    return dataclasses.replace(
        held,
        service=desired.service,
        credential=desired.name,
        description=desired.description,
        role_ids=desired.role_ids,
        permission_ids=desired.permission_ids,
        service_id=desired.service_id,
    )


def _waits_for_activation(action: Action) -> bool:
    """Whether the action makes a project key with Kafka access (or adds it): Streamkap sets
    that up asynchronously, and the key is waited on until `active`."""
    wanted = action.desired
    return (
        action.kind in (Kind.CREATE, Kind.REPLACE, Kind.UPDATE)
        and wanted is not None
        and wanted.kind is CredentialKind.PROJECT_KEY
        and wanted.kafka is not None
    )


_PAST = {
    "create": "created",
    "update": "updated",
    "replace": "replaced",
    "restore": "restored",
    "delete": "deleted",
}


def _past(action: Action, client_id: str | None) -> str:
    """What was done: an update the API could not make in place was a replace."""
    replaced = action.kind is Kind.UPDATE and client_id != action.client_id
    kind = Kind.REPLACE if replaced else action.kind
    return _PAST.get(kind, str(kind))


def _since(started: float) -> float:
    return round(time.perf_counter() - started, 4)


class FreshListing:
    """Lists remote credentials for ambiguous-create recovery, sharing one call between tasks.

    A caller must see a listing that *started* after its own failed attempt, so each listing is
    numbered when it starts and reused only by callers whose failure came before that number.
    """

    def __init__(self, credentials: CredentialApi) -> None:
        self._credentials = credentials
        self._lock = anyio.Lock()
        self._started = 0
        self._latest: tuple[int, Sequence[RemoteCredential]] = (0, ())

    def ticket(self) -> int:
        """Take right after a failed attempt; pass to `after`."""
        return self._started

    async def after(self, ticket: int) -> Sequence[RemoteCredential]:
        async with self._lock:
            generation, listing = self._latest
            if generation > ticket:
                return listing
            self._started += 1
            generation = self._started
            listing = await self._credentials.list()
            self._latest = (generation, listing)
            return listing
