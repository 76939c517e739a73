"""An example sink plugin: every credential as one entry of a single private JSON file."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, ClassVar

import anyio
from anyio import to_thread
from pydantic import Field

from provisioner.errors import SinkError
from provisioner.reconcile.model import SinkRecord
from provisioner.sinks.base import SinkContext, SinkOptions


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

    async def read(self, service: str, credential: str) -> str | None:
        entry = (await to_thread.run_sync(self._load)).get(f"{service}/{credential}")
        return entry.get("client_id") if isinstance(entry, dict) else None

    async def read_record(self, service: str, credential: str) -> SinkRecord | None:
        entry = (await to_thread.run_sync(self._load)).get(f"{service}/{credential}")
        return SinkRecord.from_document(entry)

    async def write(self, record: SinkRecord) -> None:
        async with self._lock:
            await to_thread.run_sync(self._update, record.key, record.to_document())

    async def delete(self, service: str, credential: str, client_id: str) -> None:
        async with self._lock:
            await to_thread.run_sync(self._update, f"{service}/{credential}", None, client_id)

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

    def _update(self, key: str, document: dict[str, Any] | None, only_if: str = "") -> None:
        records = self._load()
        if document is not None:
            records[key] = document
        elif records.get(key, {}).get("client_id") == only_if:
            del records[key]
        else:
            return  # an undo of a record someone else has replaced since
        _replace(self._path, json.dumps(records, indent=2).encode())


def _replace(path: Path, data: bytes) -> None:
    """Write a private temporary file, then rename it over `path`."""
    temporary = path.with_name(f".{path.name}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
