"""An example sink plugin: every credential as one entry of a single private JSON file."""

from __future__ import annotations

import json
from typing import Any, ClassVar

import anyio
from anyio import to_thread
from pydantic import Field

from provisioner.errors import SinkError
from provisioner.fs import atomic
from provisioner.model import SinkRecord
from provisioner.sinks.base import NOTHING, Previous, SinkContext, SinkOptions


class JsonFileSinkOptions(SinkOptions):
    """`path`: the JSON file, relative to the working directory."""

    path: str = Field(min_length=1)


class JsonFileSink:
    """Records keyed by `service/credential` in one 0600 JSON file, replaced atomically."""

    options_model: ClassVar[type[SinkOptions]] = JsonFileSinkOptions

    @classmethod
    def options_from_uri(cls, target: str) -> dict[str, Any]:
        """`jsonfile:PATH`."""
        return {"path": target}

    def __init__(self, name: str, options: JsonFileSinkOptions, context: SinkContext) -> None:
        self.name = name
        self.readable = True
        self._path = context.cwd / options.path
        self._lock = anyio.Lock()  # one writer at a time: each write rewrites the file

    async def check(self) -> SinkError | None:
        """Whether the file can be replaced: its directory exists and may be written in."""
        problem = await to_thread.run_sync(atomic.unwritable_dir, self._path.parent)
        if problem is not None and problem[0] == self._path.parent:
            return SinkError(self.name, f"cannot write {self._path}: {problem[1]}")
        if problem is not None:  # replace_file does not make directories
            return SinkError(self.name, f"cannot write {self._path}: directory not found")
        return None

    async def read(self, service: str, credential: str) -> str | None:
        entry = (await to_thread.run_sync(self._load)).get(f"{service}/{credential}")
        return entry.get("client_id") if isinstance(entry, dict) else None

    async def read_record(self, service: str, credential: str) -> SinkRecord | None:
        entry = (await to_thread.run_sync(self._load)).get(f"{service}/{credential}")
        return SinkRecord.from_document(entry)

    async def write(self, record: SinkRecord) -> Previous:
        """Store the record; what it replaced is the entry the file held (it holds the secret)."""
        async with self._lock:
            before = await to_thread.run_sync(self._update, record.key, record.to_document())
        if not isinstance(before, dict):
            return NOTHING
        client_id = before.get("client_id")
        return Previous(client_id if isinstance(client_id, str) else None, before)

    async def restore(
        self, service: str, credential: str, client_id: str, previous: Previous
    ) -> None:
        """Put the previous entry back (or drop the entry) if it still holds `client_id`."""
        entry = previous.content if isinstance(previous.content, dict) else None
        async with self._lock:
            await to_thread.run_sync(self._update, f"{service}/{credential}", entry, client_id)

    async def delete(self, service: str, credential: str, client_id: str) -> None:
        await self.restore(service, credential, client_id, NOTHING)

    def sweep(self, before: float) -> int:
        """No temp files to sweep."""
        return 0

    def lock_path(self) -> None:
        """No lock: a plugin may do without one."""
        return

    async def aclose(self) -> None:
        """Nothing is buffered."""

    def _load(self) -> dict[str, Any]:
        try:
            loaded = json.loads(self._path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise SinkError(self.name, f"cannot read {self._path}: {type(exc).__name__}") from None
        return loaded if isinstance(loaded, dict) else {}

    def _update(self, key: str, document: dict[str, Any] | None, only_if: str = "") -> object:
        """Set the entry (None: drop it), only while it holds `only_if` if given; the old entry."""
        records = self._load()
        before = records.get(key)
        held = before.get("client_id") if isinstance(before, dict) else None
        if only_if and held != only_if:
            return before  # an undo of a record someone else has replaced since
        if document is not None:
            records[key] = document
        elif key in records:
            del records[key]
        # A random temp name, created exclusively and never through a symlink, then renamed.
        atomic.replace_file(self._path, json.dumps(records, indent=2).encode())
        return before
