"""An in-memory sink for tests: a real implementation of the protocol, with injectable failures.

Not registered as an entry point; tests construct it directly and inspect `records`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from provisioner.errors import SinkError
from provisioner.model import SinkRecord
from provisioner.sinks.base import NOTHING, Previous, SinkContext, SinkOptions

__all__ = ["MemorySink", "MemorySinkOptions"]

# A failure switch: always, never, or decided per key (`service/credential`).
Failure = bool | Callable[[str], bool]


class MemorySinkOptions(SinkOptions):
    """The `memory` sink takes no options."""


class MemorySink:
    """Records in a dict keyed by `service/credential`; `writes` and `deletes` log every call."""

    options_model: ClassVar[type[SinkOptions]] = MemorySinkOptions

    @classmethod
    def options_from_uri(cls, target: str) -> dict[str, Any]:
        """`memory:ANYTHING` takes no options."""
        return {}

    def __init__(
        self,
        name: str = "memory",
        options: MemorySinkOptions | None = None,
        context: SinkContext | None = None,
        *,
        readable: bool = True,
        fail_reads: Failure = False,
        fail_writes: Failure = False,
        fail_deletes: Failure = False,
        fail_restores: Failure = False,
        fail_check: str | None = None,
    ) -> None:
        self.name = name
        self.readable = readable
        self.records: dict[str, SinkRecord] = {}
        self.writes: list[SinkRecord] = []
        self.deletes: list[tuple[str, str]] = []  # (key, client_id) of each delete call
        self.restores: list[tuple[str, str]] = []  # (key, client_id) of each restore call
        self.closed = False
        self.fail_reads = fail_reads
        self.fail_writes = fail_writes
        self.fail_deletes = fail_deletes
        self.fail_restores = fail_restores
        self.fail_check = fail_check  # the reason `check` gives, when set
        self.checks = 0

    async def check(self) -> SinkError | None:
        """Fine unless `fail_check` says why not; counts the calls."""
        self.checks += 1
        return SinkError(self.name, self.fail_check) if self.fail_check else None

    async def read(self, service: str, credential: str) -> str | None:
        """The stored record's identity (a project key's id, else the client id); None when
        missing or when the sink is write-only."""
        key = f"{service}/{credential}"
        self._maybe_fail(self.fail_reads, "read", key)
        record = self.records.get(key) if self.readable else None
        return record.identity if record else None

    async def read_record(self, service: str, credential: str) -> SinkRecord | None:
        """The stored record; None when missing or when the sink is write-only."""
        key = f"{service}/{credential}"
        self._maybe_fail(self.fail_reads, "read", key)
        return self.records.get(key) if self.readable else None

    async def write(self, record: SinkRecord) -> Previous:
        """Store the record, unless a write failure is injected for its key; return the old one."""
        self._maybe_fail(self.fail_writes, "write", record.key)
        self.writes.append(record)
        before = self.records.get(record.key)
        self.records[record.key] = record
        return Previous(before.identity, before) if before is not None else NOTHING

    async def restore(
        self, service: str, credential: str, client_id: str, previous: Previous
    ) -> None:
        """Put the previous record back (or drop the record) if it still holds `client_id` (its
        identity: a project key's id)."""
        key = f"{service}/{credential}"
        self._maybe_fail(self.fail_restores, "restore", key)
        self.restores.append((key, client_id))
        record = self.records.get(key)
        if record is None or record.identity != client_id:
            return
        if isinstance(previous.content, SinkRecord):
            self.records[key] = previous.content
        else:
            del self.records[key]

    async def delete(self, service: str, credential: str, client_id: str) -> None:
        """Drop the record if it still holds `client_id`."""
        key = f"{service}/{credential}"
        self._maybe_fail(self.fail_deletes, "delete", key)
        self.deletes.append((key, client_id))
        record = self.records.get(key)
        if record is not None and record.identity == client_id:
            del self.records[key]

    def sweep(self, before: float) -> int:
        """No temp files to sweep."""
        return 0

    def lock_path(self) -> None:
        """No lock: nothing on disk."""
        return

    async def aclose(self) -> None:
        self.closed = True

    def secret_of(self, key: str) -> str | None:
        """The stored secret in clear, for assertions."""
        record = self.records.get(key)
        return record.secret.get_secret_value() if record and record.secret else None

    def _maybe_fail(self, failure: Failure, verb: str, key: str) -> None:
        if failure if isinstance(failure, bool) else failure(key):
            raise SinkError(self.name, f"simulated {verb} failure for {key}", retryable=True)
