"""The `file` sink: one private JSON file per credential, `DIR/<service>/<credential>.json`."""

from __future__ import annotations

import json
import os
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from anyio import to_thread
from pydantic import Field

from provisioner.errors import SinkError
from provisioner.fs import atomic
from provisioner.model import SinkRecord
from provisioner.sinks._group import GroupCommit, Pending
from provisioner.sinks._scaffold import KeyedLocks
from provisioner.sinks._unsettled import Unsettled
from provisioner.sinks.base import NOTHING, Previous, SinkContext, SinkOptions
from provisioner.sinks.fields import FieldMap, MappedSinkOptions

__all__ = ["FileSink", "FileSinkOptions"]

_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class FileSinkOptions(MappedSinkOptions):
    """Options of the `file` sink: the directory that holds the per-service folders, and the
    JSON layout (`fields`, see provisioner.sinks.fields)."""

    path: str = Field(min_length=1)


LOCK_FILE = ".provisioner.lock"


@dataclass(frozen=True, slots=True)
class _FileWrite:
    service: str
    credential: str
    data: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class _FileRead:
    service: str
    credential: str


class FileSink:
    """Secrets as JSON files (0600) in per-service directories (0700), replaced atomically."""

    options_model: ClassVar[type[SinkOptions]] = FileSinkOptions

    @classmethod
    def options_from_uri(cls, target: str) -> dict[str, Any]:
        """`file:DIR` gives the directory."""
        return {"path": target}

    def __init__(self, name: str, options: FileSinkOptions, context: SinkContext) -> None:
        self.name = name
        self.readable = True
        self._shown = Path(options.path)  # as the user wrote it, for messages
        self._root = context.cwd / options.path
        self._fields = options.field_map()
        # One lock per key so a delete's check-then-unlink cannot interleave with a write.
        self._lock = KeyedLocks()
        # Writes arriving together share a thread hop and one fsync per service directory;
        # reads arriving together share a thread hop.
        self._writes: GroupCommit[_FileWrite, Previous]
        self._writes = GroupCommit(self._commit, interrupted="the write was interrupted")
        self._unsettled = Unsettled()
        self._reads: GroupCommit[_FileRead, dict[str, object]]
        self._reads = GroupCommit(self._read_all, interrupted="the read was interrupted")

    def lock_path(self) -> Path:
        """Where overlapping runs on this directory take turns (see provisioner.sinks.locking)."""
        return self._root / LOCK_FILE

    def sweep(self, before: float) -> int:
        """Remove the temp files a killed run left in the service directories (blocking)."""
        try:
            with atomic.open_dir(self._root, follow=True) as root:
                services = [
                    entry.name for entry in os.scandir(root) if entry.is_dir(follow_symlinks=False)
                ]
        except FileNotFoundError:
            return 0
        removed = 0
        for service in services:
            with atomic.open_dir(self._root / service, follow=False) as dir_fd:
                removed += atomic.sweep_stale_temps(dir_fd, before, _is_record_name)
        return removed

    async def check(self) -> SinkError | None:
        """Whether records can be written under the directory (made first if it is missing)."""
        problem = await to_thread.run_sync(atomic.unwritable_dir, self._root)
        if problem is None:
            return None
        path, reason = problem
        where = "" if path == self._root else f"{path}: "
        return SinkError(self.name, f"cannot write records in {self._shown}: {where}{reason}")

    async def read(self, service: str, credential: str) -> str | None:
        """The stored record's identity (project key id, else client id), or None when the file
        is missing, unreadable or corrupt."""
        self._check_names(service, credential)
        return self._fields.identity(await self._document(service, credential))

    async def read_record(self, service: str, credential: str) -> SinkRecord | None:
        """The stored record, secret included; None when missing, unreadable or corrupt."""
        self._check_names(service, credential)
        document = await self._document(service, credential)
        self._fields.remember(document)
        return self._fields.from_document(document, service, credential)

    async def _document(self, service: str, credential: str) -> dict[str, object] | None:
        """The stored JSON object, read with others in one thread hop (see `_read_batch`)."""
        done = await self._reads.submit(_FileRead(service, credential))
        if done.failure is not None:
            raise SinkError(self.name, done.failure)
        return done.result

    async def write(self, record: SinkRecord) -> Previous:
        """Replace the record's file atomically and durably; return the bytes it replaced."""
        self._check_names(record.service, record.credential)
        data = (json.dumps(self._fields.to_document(record), indent=2) + "\n").encode()
        async with self._lock(record.key):
            done = await self._writes.submit(_FileWrite(record.service, record.credential, data))
            if done.failure is not None:
                self._unsettled.failed(record.key, done.result)
                raise SinkError(self.name, done.failure)
            return self._unsettled.settled(record.key, record.identity, done.result or NOTHING)

    async def restore(
        self, service: str, credential: str, client_id: str, previous: Previous
    ) -> None:
        """Put the previous file back (or remove the file) if it still holds `client_id` (the
        identity written: a project key's id, else the client id)."""
        self._check_names(service, credential)
        async with self._lock(f"{service}/{credential}"):
            await to_thread.run_sync(self._restore, service, credential, client_id, previous)

    async def delete(self, service: str, credential: str, client_id: str) -> None:
        """Remove the file if it still holds `client_id`; then the service's directory, if that
        left it empty (`--prune` leaves no empty directories behind)."""
        await self.restore(service, credential, client_id, NOTHING)
        # Under the write batches' lock: none is between making the directory and writing in it.
        async with self._writes.lock:
            await to_thread.run_sync(self._remove_if_empty, service)

    def _remove_if_empty(self, service: str) -> None:
        with suppress(OSError), atomic.open_dir(self._root, follow=True) as root:
            os.rmdir(service, dir_fd=root)  # fails unless empty (or gone): then it stays as it is

    async def aclose(self) -> None:
        """Nothing is buffered: every write is on disk when it returns."""

    async def _read_all(self, batch: list[Pending[_FileRead, dict[str, object]]]) -> None:
        await to_thread.run_sync(self._read_batch, batch)

    def _read_batch(self, batch: list[Pending[_FileRead, dict[str, object]]]) -> None:
        """Each stored JSON object (None when missing, unreadable or not an object); a
        directory is opened once."""
        with ExitStack() as stack:
            dirs: dict[str, int | None] = {}  # None: the service has no directory yet
            for pending in batch:
                service, credential = pending.work.service, pending.work.credential
                try:
                    if service not in dirs:
                        dirs[service] = _open_if_present(stack, self._root / service)
                    dir_fd = dirs[service]
                    if dir_fd is not None:
                        pending.result = _document(_stored_bytes(dir_fd, f"{credential}.json"))
                except OSError as exc:
                    pending.failure = self._failure("read", service, credential, exc)

    async def _commit(self, batch: list[Pending[_FileWrite, Previous]]) -> None:
        await to_thread.run_sync(self._write_batch, batch)

    def _write_batch(self, batch: list[Pending[_FileWrite, Previous]]) -> None:
        """Write every file, then fsync each directory once: the renames become durable.

        Each pending's result is what its file held just before (set even when the write fails).
        """
        with ExitStack() as stack:
            dirs: dict[str, int] = {}
            renamed: dict[str, list[Pending[_FileWrite, Previous]]] = {}
            for pending in batch:
                service, credential = pending.work.service, pending.work.credential
                try:
                    if service not in dirs:
                        atomic.ensure_dir(self._root / service)
                        dirs[service] = stack.enter_context(
                            atomic.open_dir(self._root / service, follow=False)
                        )
                    name = f"{credential}.json"
                    pending.result = _snapshot(dirs[service], name, self._fields)
                    atomic.write_atomic(dirs[service], name, pending.work.data, sync_dir=False)
                except OSError as exc:
                    pending.failure = self._failure("write", service, credential, exc)
                    continue
                renamed.setdefault(service, []).append(pending)
            for service, done in renamed.items():
                try:
                    os.fsync(dirs[service])
                except OSError as exc:
                    for pending in done:
                        pending.failure = self._failure(
                            "write", service, pending.work.credential, exc
                        )

    def _restore(self, service: str, credential: str, client_id: str, previous: Previous) -> None:
        name = f"{credential}.json"
        try:
            with atomic.open_dir(self._root / service, follow=False) as dir_fd:
                if _stored_identity(dir_fd, name, self._fields) != client_id:
                    return  # someone else has replaced it since: theirs stays
                if isinstance(previous.content, bytes):
                    atomic.write_atomic(dir_fd, name, previous.content)
                else:
                    atomic.remove(dir_fd, name)
        except FileNotFoundError:
            return
        except OSError as exc:
            verb = "delete" if previous.content is None else "restore"
            raise self._error(verb, service, credential, exc) from exc

    def _error(self, verb: str, service: str, credential: str, exc: OSError) -> SinkError:
        return SinkError(self.name, self._failure(verb, service, credential, exc))

    def _failure(self, verb: str, service: str, credential: str, exc: OSError) -> str:
        shown = self._shown / service / f"{credential}.json"
        return f"cannot {verb} {shown}: {atomic.describe(exc)}"

    def _check_names(self, service: str, credential: str) -> None:
        # Names are validated by the manifest; this guards the filesystem against anything else.
        for part in (service, credential):
            if part in ("", ".", "..") or "/" in part or "\0" in part:
                raise SinkError(self.name, f"invalid name {part!r} for a file path")


def _is_record_name(name: str) -> bool:
    return name.endswith(".json")


def _open_if_present(stack: ExitStack, path: Path) -> int | None:
    """A descriptor of the directory `path` (closed with the stack), or None if it is missing."""
    try:
        return stack.enter_context(atomic.open_dir(path, follow=False))
    except FileNotFoundError:
        return None


def _stored_identity(dir_fd: int, name: str, fields: FieldMap) -> str | None:
    """The identity in the file, or None when it is missing, unreadable or not a record."""
    return fields.identity(_document(_stored_bytes(dir_fd, name)))


def _snapshot(dir_fd: int, name: str, fields: FieldMap) -> Previous:
    """The file as it is now, to put back if the write about to replace it must be undone."""
    data = _stored_bytes(dir_fd, name)
    if data is None:
        return NOTHING
    document = _document(data)
    fields.remember(document)  # now in memory: redact its secrets wherever they show
    return Previous(fields.identity(document), data)


def _stored_bytes(dir_fd: int, name: str) -> bytes | None:
    """The file's bytes, or None when it is missing or unreadable (a directory denying raises)."""
    try:
        fd = os.open(name, _READ_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    except PermissionError:
        # The file is unreadable, unless the directory itself denies access: then this raises.
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        return None
    try:
        with os.fdopen(fd, "rb") as handle:
            return handle.read()
    except OSError:
        return None


def _document(data: bytes | None) -> dict[str, object] | None:
    try:
        document = json.loads(data) if data is not None else None
    except ValueError:
        return None
    return document if isinstance(document, dict) else None
