"""Reading YAML documents fast (libyaml) while still able to name the line of any field."""

from __future__ import annotations

import os
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

try:  # libyaml is many times faster than the pure-Python parser on large manifests
    from yaml import CSafeLoader as _BaseLoader
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeLoader as _BaseLoader  # type: ignore[assignment]

#: The largest manifest file read (`PROVISIONER_MAX_MANIFEST_FILE_BYTES`): 10,000 credentials as
#: people write them (~150 bytes each) fit twice over, and no more than this is ever read of a
#: file, whatever it is (docs/limits.md).
MAX_FILE_BYTES = 4 * 1024 * 1024
#: The deepest nesting of collections a manifest may have: the format needs 8 levels (a
#: credential's roles), sink options a few more; past this, a file is refused as it is read.
MAX_DEPTH = 32


class YamlProblem(Exception):
    """A file that is not YAML we accept; `line` is 1-based, 0 when unknown."""

    def __init__(self, line: int, message: str) -> None:
        self.line = line
        self.message = message
        super().__init__(message)


class TooLarge(YamlProblem):
    """The file holds more bytes than it may; it was not read to its end."""

    def __init__(self, limit: int) -> None:
        super().__init__(0, f"file larger than {size_text(limit)}")


def size_text(size: int) -> str:
    """`512 KiB`, `4 MiB`: a limit as people read it."""
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= scale:
            return f"{size / scale:.4g} {unit}"
    return f"{size} bytes"


class _Loader(_BaseLoader):
    """Safe loader that rejects duplicate and non-scalar mapping keys."""

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | float | bool | None):
                raise YamlProblem(key_node.start_mark.line + 1, "mapping keys must be scalars")
            if key in seen:
                raise YamlProblem(key_node.start_mark.line + 1, f"duplicate key {key!r}")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


@dataclass
class YamlFile:
    """One file's documents, plus its node trees on demand for line numbers."""

    path: Path
    _source: str | bytes = field(repr=False)  # the text; compressed (UTF-8, zlib) once released
    _documents: list[Any] | None = field(repr=False)
    size: int = 0  # bytes read
    _nodes: list[Any] | None = field(default=None, repr=False)

    @property
    def documents(self) -> list[Any]:
        """The file's documents, parsed again from its text if they were released."""
        if self._documents is None:
            self._documents = _load_documents(self.text)
        return self._documents

    @property
    def text(self) -> str:
        source = self._source
        return source if isinstance(source, str) else zlib.decompress(source).decode("utf-8")

    def release(self) -> None:
        """Drop the documents once validated and compress the text: for 100,000 credentials they
        held 65 MB, only ever read again to name a field and its line in an error message."""
        self._documents = None
        if isinstance(self._source, str):
            self._source = zlib.compress(self._source.encode("utf-8"), 1)

    def line_of(self, doc: int, path: Sequence[str | int]) -> int:
        """The 1-based line of the deepest node of `path` that exists in document `doc`."""
        if self._nodes is None:
            self._nodes = list(yaml.compose_all(self.text, Loader=_BaseLoader))
        node = self._nodes[doc] if doc < len(self._nodes) else None
        line = node.start_mark.line + 1 if node is not None else 1
        for part in path:
            node, key_line = _child(node, part)
            if node is None:
                return key_line or line
            line = key_line or node.start_mark.line + 1
        return line


def _child(node: Any, part: str | int) -> tuple[Any, int]:
    """The child node at `part` and the line of its key (0 when not a mapping entry)."""
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if key_node.value == str(part):
                return value_node, key_node.start_mark.line + 1
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
        return node.value[part], 0
    return None, 0


def read_yaml(path: Path, limit: int | None = None) -> YamlFile:
    """Read and parse one file of at most `limit` bytes (MAX_FILE_BYTES by default); raise
    YamlProblem for anything that is not plain safe YAML."""
    raw = read_bounded(path, MAX_FILE_BYTES if limit is None else limit)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise YamlProblem(line, "not valid UTF-8") from None
    try:
        documents = _load_documents(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        raise YamlProblem(line, f"invalid YAML: {exc.problem or exc.context}") from None
    except yaml.reader.ReaderError as exc:
        line = text[: exc.position].count("\n") + 1
        raise YamlProblem(line, f"invalid YAML: {exc.reason}") from None
    except yaml.YAMLError as exc:
        raise YamlProblem(0, f"invalid YAML: {str(exc).splitlines()[0]}") from None
    except RecursionError:
        raise YamlProblem(0, "YAML nested too deeply") from None
    return YamlFile(path=path, _source=text, _documents=documents, size=len(raw))


def read_bounded(path: Path, limit: int) -> bytes:
    """The file's bytes; TooLarge as soon as it holds more than `limit`, never reading further.

    The size is checked on what was opened (a symlink to /dev/zero reports 0 and never ends).
    """
    with path.open("rb") as handle:
        if os.fstat(handle.fileno()).st_size > limit:
            raise TooLarge(limit)
        raw = handle.read(limit + 1)  # reads until EOF or limit+1 bytes, whichever comes first
    if len(raw) > limit:
        raise TooLarge(limit)
    return raw


def _load_documents(text: str) -> list[Any]:
    """Every document, built straight from libyaml's events; unusual tags take PyYAML's path."""
    loader = _Loader(text)
    try:
        return _EventBuilder(loader).documents()
    except _Unusual:
        pass
    finally:
        loader.dispose()
    _check_events(text)
    return list(yaml.load_all(text, Loader=_Loader))


class _Unusual(Exception):
    """A collection tag or merge key the event builder leaves to PyYAML's own constructor."""


class _EventBuilder:
    """Builds documents from parser events as SafeLoader would, without composing a node tree.

    PyYAML composes a whole document into nodes before constructing it: for 100,000 credentials
    that tree took 270 MB and 4/5 of the load time. Scalars are resolved and constructed exactly
    as SafeLoader does; aliases are refused as they come.
    """

    def __init__(self, loader: _Loader) -> None:
        self.loader = loader
        self._resolve: Any = loader.resolve  # untyped in PyYAML's stubs
        # A plain scalar whose first character starts no implicit type (bool, int, null...) is a
        # string: most names and descriptions, decided without the resolver's regexes.
        resolvers = loader.yaml_implicit_resolvers
        self._typed_starts = frozenset(resolvers) if None not in resolvers else None
        self._depth = 0  # collections open around the current event

    def documents(self) -> list[Any]:
        loader = self.loader
        loader.get_event()  # stream start
        documents = []
        while not loader.check_event(yaml.StreamEndEvent):
            loader.get_event()  # document start
            documents.append(self.value(loader.get_event()))
            loader.get_event()  # document end
        return documents

    def value(self, event: Any) -> Any:
        if isinstance(event, yaml.ScalarEvent):
            return self.scalar(event)
        if isinstance(event, yaml.AliasEvent):
            raise _alias_problem(event)
        if event.tag not in (None, "!", _SEQ, _MAP):
            raise _Unusual(event.tag)
        if self._depth >= MAX_DEPTH:
            raise _depth_problem(event)
        self._depth += 1
        built = self.sequence() if isinstance(event, yaml.SequenceStartEvent) else self.mapping()
        self._depth -= 1
        return built

    def scalar(self, event: Any) -> Any:
        tag, value = event.tag, event.value
        starts = self._typed_starts
        if tag is None and value and starts is not None and value[0] not in starts:
            return value
        if tag is None or tag == "!":
            tag = self._resolve(yaml.ScalarNode, event.value, event.implicit)
        if tag == _STR:
            return event.value
        if tag == _MERGE:
            raise _Unusual(tag)
        node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
        constructors = self.loader.yaml_constructors  # None: SafeLoader's "undefined tag" error
        return (constructors.get(tag) or constructors[None])(self.loader, node)

    def sequence(self) -> list[Any]:
        items = []
        while not self.loader.check_event(yaml.SequenceEndEvent):
            items.append(self.value(self.loader.get_event()))
        self.loader.get_event()
        return items

    def mapping(self) -> dict[Any, Any]:
        mapping: dict[Any, Any] = {}
        while not self.loader.check_event(yaml.MappingEndEvent):
            event: Any = self.loader.get_event()
            line = event.start_mark.line + 1
            key = self.value(event)
            if not isinstance(key, str | int | float | bool | None):
                raise YamlProblem(line, "mapping keys must be scalars")
            if key in mapping:
                raise YamlProblem(line, f"duplicate key {key!r}")
            mapping[key] = self.value(self.loader.get_event())
        self.loader.get_event()
        return mapping


_STR = "tag:yaml.org,2002:str"
_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"
_MERGE = "tag:yaml.org,2002:merge"


def _alias_problem(event: Any) -> YamlProblem:
    line = event.start_mark.line + 1 if event.start_mark else 0
    return YamlProblem(line, "YAML aliases (*name) are not allowed in manifests")


def _depth_problem(event: Any) -> YamlProblem:
    line = event.start_mark.line + 1 if event.start_mark else 0
    return YamlProblem(line, f"YAML nested deeper than {MAX_DEPTH} levels")


def _check_events(text: str) -> None:
    """Before PyYAML's own constructor builds a document: refuse aliases, which let a small file
    expand into a huge one ("billion laughs"), and nesting past MAX_DEPTH."""
    depth = 0
    for event in yaml.parse(text, Loader=_BaseLoader):
        if isinstance(event, yaml.AliasEvent):
            raise _alias_problem(event)
        if isinstance(event, yaml.CollectionStartEvent):
            if depth >= MAX_DEPTH:
                raise _depth_problem(event)
            depth += 1
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
