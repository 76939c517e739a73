"""Sink types by name: the built-in ones from a table, others from the `provisioner.sinks`
entry-point group; each is imported when first named, so a run loads only the sinks it uses."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import import_module
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
#: The sink types this distribution ships, as `module:Class`: found without reading the entry
#: points of every installed distribution (what makes `importlib.metadata` slow to start), and
#: never shadowed by a plugin that registers the same name.
BUILT_IN = {
    "file": "provisioner.sinks.file:FileSink",
    "env": "provisioner.sinks.env:EnvSink",
    "vault": "provisioner.sinks.vault:VaultSink",
    "kubernetes": "provisioner.sinks.kubernetes:KubernetesSink",
    "k8s": "provisioner.sinks.kubernetes:KubernetesSink",  # for `--sink k8s:NAMESPACE`
    "aws-secretsmanager": "provisioner.sinks.aws:SecretsManagerSink",
    "aws-sm": "provisioner.sinks.aws:SecretsManagerSink",
}
_USERINFO = re.compile(r"//[^/@]*@")


@dataclass(frozen=True)
class SinkDefinition:
    """A named sink from a manifest or `--sink`: its type and validated options."""

    name: str
    type: str
    options: SinkOptions


#: The sink types loaded so far, by name.
_types: dict[str, SinkType] = {}
#: Sink types whose plugin could not be imported, with why: only a run that uses one fails.
_broken: dict[str, str] = {}


def sink_type(type_name: str) -> SinkType:
    """The sink type registered under `type_name`, imported on first use; KeyError names the
    known ones."""
    found = _types.get(type_name)
    if found is None:
        target = BUILT_IN.get(type_name) or _plugins().get(type_name)
        if target is None:
            known = ", ".join(sorted({*BUILT_IN, *_plugins()})) or "none"
            raise KeyError(f"unknown sink type {type_name!r} (installed: {known})")
        found = _load(type_name, target)
    return found


def sink_types() -> dict[str, SinkType]:
    """Every installed sink type by name, each loaded; a plugin failing to import is left out."""
    for type_name in sorted({*BUILT_IN, *_plugins()}):
        try:
            sink_type(type_name)
        except KeyError:
            continue
    return _types


def _load(type_name: str, target: str) -> SinkType:
    if type_name not in _broken:
        module, _, attribute = target.partition(":")
        try:
            _types[type_name] = cast(SinkType, getattr(import_module(module), attribute))
            return _types[type_name]
        except Exception as exc:  # a broken plugin must not break runs that never use it
            _broken[type_name] = f"{type(exc).__name__}: {exc}"
    raise KeyError(f"sink type {type_name!r} cannot be loaded ({_broken[type_name]})")


@cache
def _plugins() -> dict[str, str]:
    """Third-party sink types (`name: module:Class`), read from the installed distributions'
    entry points once, and only for a type that is not built in."""
    from importlib.metadata import entry_points  # slow to import and to scan: only when needed

    targets: dict[str, str] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        targets.setdefault(entry.name, entry.value)
    return targets


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
