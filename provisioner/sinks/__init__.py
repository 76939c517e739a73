"""Sink types, found through the `provisioner.sinks` entry-point group (built-ins included)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib.metadata import entry_points
from typing import cast

from pydantic import ValidationError

from provisioner.errors import UsageError
from provisioner.sinks.base import NOTHING, Previous, Sink, SinkContext, SinkOptions, SinkType

__all__ = [
    "NOTHING",
    "Previous",
    "Sink",
    "SinkContext",
    "SinkDefinition",
    "SinkOptions",
    "SinkType",
    "open_sink",
    "parse_sink_uri",
    "sink_type",
    "sink_types",
]

ENTRY_POINT_GROUP = "provisioner.sinks"
_USERINFO = re.compile(r"//[^/@]*@")


@dataclass(frozen=True)
class SinkDefinition:
    """A named sink from a manifest or `--sink`: its type and validated options."""

    name: str
    type: str
    options: SinkOptions


#: Sink types whose plugin could not be imported, with why: only a run that uses one fails.
_broken: dict[str, str] = {}


@cache
def sink_types() -> dict[str, SinkType]:
    """Every installed sink type by name, loaded once; a plugin failing to import is set aside."""
    found: dict[str, SinkType] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        if entry.name in found:
            continue
        try:
            found[entry.name] = cast(SinkType, entry.load())
        except Exception as exc:  # a broken plugin must not break runs that never use it
            _broken.setdefault(entry.name, f"{type(exc).__name__}: {exc}")
    return found


def sink_type(type_name: str) -> SinkType:
    """The sink type registered under `type_name`; KeyError names the known ones."""
    types = sink_types()
    if type_name in types:
        return types[type_name]
    if type_name in _broken:
        raise KeyError(f"sink type {type_name!r} cannot be loaded ({_broken[type_name]})")
    known = ", ".join(sorted(types)) or "none"
    raise KeyError(f"unknown sink type {type_name!r} (installed: {known})")


def parse_sink_uri(name: str, uri: str) -> SinkDefinition:
    """`file:DIR`, `env:PATH`, `vault:https://HOST:PORT/MOUNT[/PREFIX]`, or a plugin's own."""
    type_name, sep, target = uri.partition(":")
    shown = _USERINFO.sub("//", uri)  # never echo a password typed into a URI
    if not sep or not target:
        raise UsageError(f"--sink {shown!r}: expected TYPE:TARGET, e.g. file:./secrets")
    try:
        kind = sink_type(type_name)
        options = kind.options_model.model_validate(kind.options_from_uri(target))
    except (KeyError, ValueError, ValidationError) as exc:
        raise UsageError(f"--sink {shown!r}: {_first_line(exc)}") from None
    return SinkDefinition(name=name, type=type_name, options=options)


def open_sink(definition: SinkDefinition, context: SinkContext) -> Sink:
    """Instantiate the sink a definition describes."""
    kind = sink_type(definition.type)
    return kind(definition.name, definition.options, context)


def _first_line(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        return f"{loc}: {err['msg']}" if loc else str(err["msg"])
    text = exc.args[0] if exc.args else str(exc)
    return str(text)
