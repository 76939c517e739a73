"""The flags the commands share, and the typed arguments argparse's namespace is read into.

Each command reads its namespace once, into a frozen dataclass; nothing after that sees argparse.
Light on purpose: every command imports it, `validate` too, whose start-up is the import of what
it uses (no HTTP client, no pydantic-settings).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Literal, Protocol, TypeVar

from pydantic import BaseModel, ByteSize, ConfigDict, Field, ValidationError

from provisioner.errors import UsageError
from provisioner.manifest.durations import parse_duration
from provisioner.manifest.load import MAX_TOTAL_BYTES
from provisioner.manifest.yamlfile import MAX_FILE_BYTES

if TYPE_CHECKING:
    from collections.abc import Mapping

    from provisioner.cli.views import View
    from provisioner.config import Settings

A = TypeVar("A")


@dataclass(frozen=True)
class Command(Generic[A]):
    """One subcommand: its flags, how its namespace becomes its arguments, and what it does.

    `settings` gives the settings a command runs with, from which `cli.main` chooses the view;
    a command that reads none (`simulate`, `schema`) speaks in plain lines.
    """

    name: str
    flags: Callable[[argparse.ArgumentParser], None]
    parse: Callable[[argparse.Namespace], A]
    run: Callable[[A, View], int]
    settings: Callable[[A], Configured | None] = lambda args: None


class Configured(Protocol):
    """What the view is chosen from: `Settings`, or `validate`'s `LocalSettings`."""

    @property
    def log_level(self) -> str: ...

    @property
    def log_format(self) -> str: ...


class LocalSettings(BaseModel):
    """What `validate` reads of its environment: how to log, and how much manifest to read.

    Read without pydantic-settings (its import is a tenth of `validate`'s start-up): the names
    and defaults are those of `Settings` (tests/unit/test_startup_settings.py holds them equal),
    matched without regard to case as there.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    log_format: Literal["json", "console", "auto"] = Field(
        "auto", validation_alias="PROVISIONER_LOG_FORMAT"
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", validation_alias="PROVISIONER_LOG_LEVEL"
    )
    max_manifest_file_bytes: ByteSize = Field(
        ByteSize(MAX_FILE_BYTES), gt=0, validation_alias="PROVISIONER_MAX_MANIFEST_FILE_BYTES"
    )
    max_manifest_run_bytes: ByteSize = Field(
        ByteSize(MAX_TOTAL_BYTES), gt=0, validation_alias="PROVISIONER_MAX_MANIFEST_RUN_BYTES"
    )

    @classmethod
    def read(cls, environ: Mapping[str, str]) -> LocalSettings:
        """From the environment; a value that is not valid is a usage error."""
        try:
            return cls.model_validate({name.upper(): value for name, value in environ.items()})
        except ValidationError as exc:
            raise UsageError(f"invalid configuration: {_problems(exc)}") from None


@dataclass(frozen=True, kw_only=True)
class JobArgs:
    """What a command that reads manifests is given: the settings (the environment, overridden
    by flags) and the flags that shape the job."""

    paths: tuple[Path, ...]
    settings: Settings
    sink: str | None = None
    prune: bool = False
    simulate: bool = False
    replace: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, namespace: argparse.Namespace, replace: list[str] | None = None) -> JobArgs:
        """The flags `add_run_flags` and `add_budget_flag` added; `replace`, where there is one."""
        return cls(
            paths=tuple(namespace.paths),
            settings=read_settings(namespace.concurrency, namespace.max_changes),
            sink=namespace.sink,
            prune=namespace.prune,
            simulate=namespace.simulate,
            replace=frozenset(replace or ()),
        )


def read_settings(concurrency: int | None = None, max_changes: str | None = None) -> Settings:
    """Settings from the environment, overridden by the flags given."""
    from provisioner.config import Settings  # pydantic-settings: for the commands that call out

    overrides: dict[str, Any] = {}
    if concurrency is not None:
        overrides["concurrency"] = concurrency
    if max_changes is not None:
        overrides["max_changes"] = max_changes
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise UsageError(f"invalid configuration: {_problems(exc)}") from None


def _problems(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())


def add_paths(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="files or dirs")


def add_run_flags(parser: argparse.ArgumentParser, *, prune_help: str) -> None:
    parser.add_argument("--sink", metavar="URI", help="the `default` sink, e.g. file:./secrets")
    parser.add_argument("--concurrency", type=int, metavar="N", help="most requests in flight")
    parser.add_argument("--prune", action="store_true", help=prune_help)
    parser.add_argument(
        "--simulate", action="store_true", help="run against the in-process simulator"
    )


def add_budget_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-changes",
        metavar="N|P%|all",
        help="most replaces and deletes of credentials in use per run (default 25%%, at least 5)",
    )


def add_replace_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--replace",
        action="append",
        default=[],
        metavar="KEY",
        help="replace <service>/<credential> now, whatever its state (repeatable; grace applies)",
    )


def add_output_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--metrics-file", type=Path, metavar="PATH", help="Prometheus textfile (node-exporter)"
    )
    parser.add_argument("--pushgateway", metavar="URL", help="push metrics at the end of a run")
    parser.add_argument(
        "--no-progress", action="store_true", help="no live progress display, even on a terminal"
    )


def duration_arg(text: str) -> float:
    try:
        return parse_duration(text).total_seconds()
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def interval_arg(text: str) -> float:
    seconds = duration_arg(text)
    if seconds <= 0:
        raise argparse.ArgumentTypeError("the interval must be longer than 0s")
    return seconds
