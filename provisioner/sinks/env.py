"""The `env` sink: dotenv assignments merged into a file, or printed on standard output.

Each credential becomes `STREAMKAP_<SERVICE>_<CREDENTIAL>_CLIENT_ID` and `..._SECRET`; a project
key's adds `..._PROJECT_KEY_ID` and, with Kafka access, `..._KAFKA_USERNAME`, `..._KAFKA_PASSWORD`
and `..._KAFKA_BOOTSTRAP_SERVERS` (a Kafka-only key has no `CLIENT_ID`/`SECRET`). A write sets the
variables of the fields its record has and removes the credential's others, so none is left
stale. The file is parsed once and edited in memory; concurrent writers are group-committed, so
thousands of credentials cost a handful of atomic rewrites rather than one each.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, ClassVar, TextIO

import anyio
from anyio import to_thread
from pydantic import Field

from provisioner.errors import SinkError
from provisioner.fs import atomic
from provisioner.logs import register_secret
from provisioner.model import SinkRecord
from provisioner.sinks._group import GroupCommit, Pending
from provisioner.sinks._unsettled import Unsettled
from provisioner.sinks.base import NOTHING, Previous, SinkContext, SinkOptions
from provisioner.sinks.fields import MANIFEST_FIELDS, FieldMap, MappedSinkOptions

__all__ = ["STDOUT", "EnvSink", "EnvSinkOptions", "quote_value", "variable_names"]

#: Without `fields`: the API access, and a project key's id and Kafka login (variable suffix ->
#: record field). A record sets the variables of the fields it has.
_DEFAULT_LAYOUT = {
    "CLIENT_ID": "client_id",
    "SECRET": "secret",
    "PROJECT_KEY_ID": "project_key_id",
    "KAFKA_USERNAME": "kafka_username",
    "KAFKA_PASSWORD": "kafka_password",
    "KAFKA_BOOTSTRAP_SERVERS": "kafka_bootstrap_servers",
}
#: The default variables holding a secret: registered for redaction whenever the file is read.
_SECRET_SUFFIXES = ("_SECRET", "_KAFKA_PASSWORD")

STDOUT = "-"

_UNSAFE_NAME_CHAR = re.compile(r"[^A-Z0-9]")
# An assignment as python-dotenv reads it: optional `export`, a key, `=`, the value.
_ASSIGNMENT = re.compile(r"([ \t]*(?:export[ \t]+)?)([^=#\s]+)[ \t]*=[ \t]*(.*)", re.DOTALL)
# python-dotenv's quoted values: a backslash always pairs with the next character.
_QUOTED = {
    "'": re.compile(r"'((?:\\.|[^'\\])*)'", re.DOTALL),
    '"': re.compile(r'"((?:\\.|[^"\\])*)"', re.DOTALL),
}
_ESCAPES = {"'": re.compile(r"\\[\\']"), '"': re.compile(r"\\[\\'\"abfnrtv]")}
_UNESCAPED = dict(zip("\\'\"abfnrtv", "\\'\"\a\b\f\n\r\t\v", strict=True))


class EnvSinkOptions(MappedSinkOptions):
    """Options of the `env` sink: the dotenv file, or `-` for standard output, and `fields`: the
    variable suffixes after `STREAMKAP_<SERVICE>_<CREDENTIAL>_` (see provisioner.sinks.fields)."""

    path: str = Field(min_length=1)

    @classmethod
    def stored_key(cls, out_key: str) -> str:
        """A suffix as the variable name spells it: upper-cased, other chars as `_`."""
        return _UNSAFE_NAME_CHAR.sub("_", out_key.upper())

    def field_map(self) -> FieldMap:
        """The default layout is the API access, the project key's id and its Kafka login."""
        return FieldMap(self.layout())

    def layout(self) -> dict[str, str]:
        """Variable suffix -> record field."""
        return dict(self.fields or _DEFAULT_LAYOUT)

    def record_names(self, service: str, credential: str) -> tuple[str, ...]:
        """Every variable name a credential may set, whatever its kind: two keys must never
        share one (`a-b/c` and `a/b-c`, or a `fields` suffix such as `SERVICE_ID` against a
        credential named `...-service` mapping `ID`, or `KAFKA_USERNAME` against one named
        `...-kafka` mapping `USERNAME`)."""
        stem = variable_names(service, credential)[0].removesuffix("_CLIENT_ID")
        return tuple(f"{stem}_{self.stored_key(out)}" for out in self.layout())

    def unstorable(self, record: SinkRecord) -> dict[str, str]:
        """Manifest values no quoting stores exactly (see `quote_value`), by record field."""
        ours = {out: name for out, name in self.layout().items() if name in MANIFEST_FIELDS}
        if not ours:
            return {}
        values = self.field_map().to_strings(record)
        found: dict[str, str] = {}
        for out, name in ours.items():
            try:
                quote_value(values.get(out, ""))
            except ValueError as exc:
                found.setdefault(name, str(exc))
        return found


def variable_names(service: str, credential: str) -> tuple[str, str]:
    """The client-id and secret variable names for a credential."""
    stem = _UNSAFE_NAME_CHAR.sub("_", f"STREAMKAP_{service}_{credential}".upper())
    return f"{stem}_CLIENT_ID", f"{stem}_SECRET"


def quote_value(value: str) -> str:
    """Quote `value` so python-dotenv and bash read it back exactly; ValueError if none can.

    A line feed is kept inside the quotes (both read a quoted value across lines: a mapped
    `kafka_properties`); any other control character is refused (a carriage return becomes a
    line feed when python-dotenv reads the file)."""
    if not value.replace("\n", "").isprintable():
        raise ValueError("it contains a control character")
    if _single_quotable(value):
        return f"'{value}'"
    # In double quotes bash expands $ and ` where python-dotenv keeps them, and neither
    # python-dotenv nor bash has an escape the other reads the same way.
    if "$" in value or "`" in value:
        raise ValueError("no quoting reads back the same in python-dotenv and bash")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _single_quotable(value: str) -> bool:
    # bash takes single quotes literally; python-dotenv decodes \\ and \' inside them, pairs
    # a trailing backslash with the closing quote, and expands ${...} in any value.
    return not ("'" in value or "\\\\" in value or value.endswith("\\") or "${" in value)


def _decode(raw: str) -> str | None:
    """A value as python-dotenv reads it, or None when its quotes do not close."""
    quote = raw[:1]
    if quote not in _QUOTED:
        return re.sub(r"\s+#.*", "", raw).rstrip()
    found = _QUOTED[quote].match(raw)
    if found is None:
        return None
    return _ESCAPES[quote].sub(lambda escape: _UNESCAPED[escape[0][1]], found[1])


class _Document:
    """A dotenv file as logical lines, with the variables it assigns indexed for in-place edits."""

    def __init__(self, lines: list[str | None], where: dict[str, list[int]]) -> None:
        self._lines = lines  # None marks a removed line
        self._where = where  # variable -> indices of the lines assigning it

    @classmethod
    def parse(cls, text: str) -> _Document:
        lines: list[str | None] = list(_logical_lines(text))
        where: dict[str, list[int]] = {}
        for index, line in enumerate(lines):
            found = _ASSIGNMENT.match(line or "")
            if found:
                where.setdefault(found[2], []).append(index)
        return cls(lines, where)

    def copy(self) -> _Document:
        return _Document(list(self._lines), {k: list(v) for k, v in self._where.items()})

    def get(self, name: str) -> str | None:
        """The value of `name`; the last assignment wins, as in python-dotenv and bash."""
        indices = self._where.get(name)
        found = _ASSIGNMENT.match(self._lines[indices[-1]] or "") if indices else None
        return _decode(found[3]) if found else None

    def assignment(self, name: str) -> str | None:
        """The assignment in effect for `name` (the last), without an `export ` in front."""
        indices = self._where.get(name)
        line = self._lines[indices[-1]] if indices else None
        found = _ASSIGNMENT.match(line or "")
        return found[0][found.end(1) :] if found else None

    def put(self, name: str, assignment: str) -> None:
        """Replace the first assignment of `name` in place (dropping repeats), or append one."""
        indices = self._where.get(name)
        if not indices:
            self._where[name] = [len(self._lines)]
            self._lines.append(assignment)
            return
        first, *repeats = indices
        found = _ASSIGNMENT.match(self._lines[first] or "")
        self._lines[first] = (found[1] if found else "") + assignment  # keep `export `
        self.drop_indices(repeats)
        self._where[name] = [first]

    def drop(self, name: str) -> None:
        self.drop_indices(self._where.pop(name, []))

    def drop_indices(self, indices: list[int]) -> None:
        for index in indices:
            self._lines[index] = None

    def register_secrets(self) -> None:
        """Make the secrets this file holds known to redaction (see provisioner.logs)."""
        for name in self._where:
            if name.startswith("STREAMKAP_") and name.endswith(_SECRET_SUFFIXES):
                register_secret(self.get(name))

    def render(self) -> str:
        kept = [line for line in self._lines if line is not None]
        return "\n".join(kept) + "\n" if kept else ""


def _logical_lines(text: str) -> list[str]:
    """Split dotenv text into lines, keeping a quoted value that spans lines in one piece."""
    lines: list[str] = []
    start = 0
    while start < len(text):
        end = _line_end(text, _quoted_value_end(text, start))
        lines.append(text[start:end])
        start = end + 1
    return lines


def _line_end(text: str, pos: int) -> int:
    end = text.find("\n", pos)
    return len(text) if end < 0 else end


def _quoted_value_end(text: str, start: int) -> int:
    """Where the quoted value of an assignment at `start` closes, else `start`."""
    found = _ASSIGNMENT.match(text, start, _line_end(text, start))
    if found is None or found[3][:1] not in _QUOTED:
        return start
    closed = _QUOTED[found[3][:1]].match(text, found.start(3))
    return closed.end() if closed else start


class _Unreadable(Exception):
    """The env file exists but cannot be read as dotenv text; the message says why."""


class _DotenvFile:
    """The env file: loaded once, edited in memory, committed for every queued writer at once."""

    def __init__(self, sink: str, path: Path, shown: str) -> None:
        self._sink = sink
        self._path = path
        self._shown = shown
        self._document: _Document | None = None  # always what is durably on disk
        interrupted = f"cannot write {shown}: the commit was interrupted"
        self._commits: GroupCommit[Callable[[_Document], bool], None]
        self._commits = GroupCommit(self._commit, interrupted=interrupted)
        self._lock = self._commits.lock  # also held while loading
        self.file_writes = 0

    @property
    def path(self) -> Path:
        return self._path

    def check(self) -> SinkError | None:
        """Why the file could not be replaced (see EnvSink.check), or None; blocking."""
        problem = atomic.unwritable_dir(self._path.parent)
        if problem is not None:
            path, reason = problem
            return SinkError(self._sink, f"cannot write {self._shown}: directory {path}: {reason}")
        refused = atomic.unreplaceable_file(self._path)
        if refused is not None:
            return SinkError(self._sink, f"cannot write {self._shown}: {refused}")
        return None

    async def loaded(self) -> _Document:
        """The file as last read or committed (read on first use)."""
        return await self._loaded()

    async def submit(self, apply: Callable[[_Document], bool]) -> None:
        """Apply an edit (True when it changed something); return once it is on disk, having
        possibly been committed by another writer."""
        await self._loaded()
        done = await self._commits.submit(apply)
        if done.failure is not None:
            raise SinkError(self._sink, done.failure)

    async def _commit(self, batch: list[Pending[Callable[[_Document], bool], None]]) -> None:
        try:
            # Read again right before rewriting: a line another program added since the last
            # read must survive the rewrite (the copy in memory would drop it).
            draft = await to_thread.run_sync(self._read)
            changed = [pending.work(draft) for pending in batch]
            if any(changed):
                await to_thread.run_sync(self._store, draft.render())
                self.file_writes += 1
            self._document = draft
        except OSError as exc:
            self._fail(batch, f"cannot write {self._shown}: {atomic.describe(exc)}")
        except _Unreadable as exc:
            self._fail(batch, f"cannot read {self._shown}: {exc}")

    @staticmethod
    def _fail(batch: list[Pending[Callable[[_Document], bool], None]], failure: str) -> None:
        for pending in batch:
            pending.failure = failure

    async def _loaded(self) -> _Document:
        if self._document is None:
            async with self._lock:
                return await self._loaded_locked()
        return self._document

    async def _loaded_locked(self) -> _Document:
        if self._document is None:
            self._document = await to_thread.run_sync(self._load)
        return self._document

    def _load(self) -> _Document:
        try:
            return self._read()
        except _Unreadable as exc:
            raise SinkError(self._sink, f"cannot read {self._shown}: {exc}") from None

    def _read(self) -> _Document:
        """The file as it is on disk now (empty when missing); _Unreadable if it cannot be."""
        try:
            document = _Document.parse(_read_text(self._path))
        except FileNotFoundError:
            return _Document.parse("")
        except OSError as exc:
            raise _Unreadable(atomic.describe(exc)) from None
        except UnicodeDecodeError:
            raise _Unreadable("not UTF-8 text; refusing to rewrite it") from None
        document.register_secrets()
        return document

    def _store(self, text: str) -> None:
        atomic.ensure_dir(self._path.parent)
        with atomic.open_dir(self._path.parent, follow=True) as dir_fd:
            atomic.write_atomic(dir_fd, self._path.name, text.encode())


def _read_text(path: Path) -> str:
    """The file's text; OSError unless it is a regular file (a FIFO would block us forever)."""
    # O_NONBLOCK: opening a FIFO for reading otherwise waits, uninterruptibly, for a writer.
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file (refusing to read or replace it)")
        return handle.read().decode("utf-8")


class _Stdout:
    """Standard output (or an injected stream): each credential's two lines written as one."""

    def __init__(self, sink: str, stream: TextIO | None) -> None:
        self._sink = sink
        self._stream = stream
        self._lock = anyio.Lock()

    async def emit(self, text: str) -> None:
        async with self._lock:  # lines of concurrent writes never interleave
            try:
                await to_thread.run_sync(self._emit, text)
            except (OSError, ValueError) as exc:
                reason = atomic.describe(exc) if isinstance(exc, OSError) else str(exc)
                raise SinkError(self._sink, f"cannot write to standard output: {reason}") from exc

    def _emit(self, text: str) -> None:
        stream = self._stream if self._stream is not None else sys.stdout
        stream.write(text)
        stream.flush()


class EnvSink:
    """Credentials as dotenv variables in a 0600 file (merged, atomic) or on standard output."""

    options_model: ClassVar[type[SinkOptions]] = EnvSinkOptions

    @classmethod
    def options_from_uri(cls, target: str) -> dict[str, Any]:
        """`env:PATH` gives the file; `env:-` standard output."""
        return {"path": target}

    def __init__(
        self,
        name: str,
        options: EnvSinkOptions,
        context: SinkContext,
        *,
        stdout: TextIO | None = None,
    ) -> None:
        self.name = name
        self.readable = options.path != STDOUT
        self._file = (
            _DotenvFile(name, context.cwd / options.path, options.path) if self.readable else None
        )
        self._stdout = _Stdout(name, stdout)
        self._owners: dict[str, str] = {}  # variable stem -> the key that wrote it
        self._options = options
        self._fields = options.field_map()
        self._suffixes = options.layout()  # variable suffix -> record field
        self._unsettled = Unsettled()

    def lock_path(self) -> Path | None:
        """Where overlapping runs on this env file take turns; none for standard output."""
        if self._file is None:
            return None
        path = self._file.path
        return path.with_name(f".{path.name}.lock")

    def sweep(self, before: float) -> int:
        """Remove the temp files a killed run left next to the env file (blocking)."""
        if self._file is None:
            return 0
        path = self._file.path
        try:
            with atomic.open_dir(path.parent, follow=True) as dir_fd:
                return atomic.sweep_stale_temps(dir_fd, before, path.name.__eq__)
        except FileNotFoundError:
            return 0

    async def check(self) -> SinkError | None:
        """Whether the env file can be replaced: its directory writable (or creatable), the file,
        if present, a regular file. Standard output always takes a write."""
        if self._file is None:
            return None
        return await to_thread.run_sync(self._file.check)

    @property
    def file_writes(self) -> int:
        """How many times the env file was rewritten (group commits)."""
        return self._file.file_writes if self._file else 0

    async def read(self, service: str, credential: str) -> str | None:
        """The stored identity: the `PROJECT_KEY_ID` variable when set, else the `CLIENT_ID`
        one; always None on standard output, which cannot be read back."""
        if self._file is None:
            return None
        return self._held(await self._file.loaded(), self._names(service, credential))

    async def read_record(self, service: str, credential: str) -> SinkRecord | None:
        """The fields the variables hold (by default the API access and the Kafka login; the
        other fields a dotenv file does not keep)."""
        if self._file is None:
            return None
        document = self._variables(await self._file.loaded(), self._names(service, credential))
        self._fields.remember(document)
        return self._fields.from_document(document, service, credential)

    async def write(self, record: SinkRecord) -> Previous:
        """Set the variables of the fields the record has and remove the credential's others;
        returns, once durably written, the lines they replaced.

        Standard output cannot be taken back: there a write replaces NOTHING.
        """
        self._claim(record)
        names = self._names(record.service, record.credential)
        values = self._fields.to_strings(record)
        # A field the record lacks (a Kafka-only key's client id) is None: its variable goes.
        lines = tuple(
            (name, None if out not in values else f"{name}={self._quote(record, out, values)}")
            for out, name in zip(self._suffixes, names, strict=True)
        )
        if self._file is None:
            await self._stdout.emit("".join(f"{line}\n" for _, line in lines if line))
            return NOTHING
        seen: list[Previous] = []  # what the edit found, filled in when the commit runs it
        try:
            await self._file.submit(partial(_put, lines, self._held, seen))
        except SinkError:
            self._unsettled.failed(record.key, seen[0] if seen else None)
            raise
        return self._unsettled.settled(record.key, record.identity, seen[0])

    async def restore(
        self, service: str, credential: str, client_id: str, previous: Previous
    ) -> None:
        """Put the previous assignments back (or remove the credential's variables) if the file
        still holds `client_id` (the identity written); nothing to do on standard output."""
        if self._file is None:
            return
        names = self._names(service, credential)
        before = previous.content if isinstance(previous.content, tuple) else (None,) * len(names)
        await self._file.submit(partial(_restore, names, self._held, client_id, before))

    async def delete(self, service: str, credential: str, client_id: str) -> None:
        """Remove the credential's variables if the file still holds `client_id`; no-op on
        standard output."""
        await self.restore(service, credential, client_id, NOTHING)

    async def aclose(self) -> None:
        """Nothing is buffered: every write is on disk (or flushed) when it returns."""

    def _names(self, service: str, credential: str) -> tuple[str, ...]:
        """The variable names of a credential, in the order of `self._suffixes`."""
        return self._options.record_names(service, credential)

    def _variables(self, document: _Document, names: tuple[str, ...]) -> dict[str, str | None]:
        """A credential's variables as a stored object: variable suffix -> value."""
        return {out: document.get(name) for out, name in zip(self._suffixes, names, strict=True)}

    def _held(self, document: _Document, names: tuple[str, ...]) -> str | None:
        """The identity a credential's variables hold (see FieldMap.identity)."""
        return self._fields.identity(self._variables(document, names))

    def _claim(self, record: SinkRecord) -> tuple[str, str]:
        # Distinct keys can map to one name (`a-b/c` and `a/b-c`); refuse rather than overwrite.
        names = variable_names(record.service, record.credential)
        owner = self._owners.setdefault(names[0], record.key)
        if owner != record.key:
            raise SinkError(self.name, f"{record.key} and {owner} both map to {names[0]}")
        return names

    def _quote(self, record: SinkRecord, out: str, values: dict[str, str]) -> str:
        what = self._suffixes[out].replace("_", " ")
        try:
            return quote_value(values[out])
        except ValueError as exc:
            raise SinkError(self.name, f"cannot store the {what} of {record.key}: {exc}") from None


#: The identity a credential's variables (by name) hold in a document.
_Held = Callable[[_Document, tuple[str, ...]], str | None]


def _put(
    assignments: tuple[tuple[str, str | None], ...],
    held: _Held,
    seen: list[Previous],
    document: _Document,
) -> bool:
    """Set the assignments (None: remove the variable), noting in `seen` what they replace."""
    names = tuple(name for name, _ in assignments)
    before = tuple(document.assignment(name) for name in names)
    if any(line is not None for line in before):
        seen[:] = [Previous(held(document, names), before)]
    else:
        seen[:] = [NOTHING]
    for name, line in assignments:
        if line is None:
            document.drop(name)
        else:
            document.put(name, line)
    return True


def _restore(
    names: tuple[str, ...],
    held: _Held,
    client_id: str,
    before: tuple[object, ...],
    document: _Document,
) -> bool:
    """While the file holds `client_id`: each name's previous assignment back, or none."""
    if held(document, names) != client_id:
        return False  # someone else has replaced it since: theirs stays
    for name, line in zip(names, before, strict=True):
        if isinstance(line, str):
            document.put(name, line)
        else:
            document.drop(name)
    return True
