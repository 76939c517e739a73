"""The flags the commands share, and the typed arguments argparse's namespace is read into.

Each command reads its namespace once, into a frozen dataclass; nothing after that sees argparse.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import ValidationError

from provisioner.cli.outputs import Outputs
from provisioner.cli.views import View
from provisioner.config import Settings
from provisioner.errors import UsageError
from provisioner.manifest.durations import parse_duration

A = TypeVar("A")


@dataclass(frozen=True)
class Command(Generic[A]):
    """One subcommand: its flags, how its namespace becomes its arguments, and what it does.

    `settings` gives the settings a command runs with, from which `cli.main` chooses the view;
    a command that reads none (`simulate`, `schema`) speaks in plain lines.
    """

    name: str
    help: str
    flags: Callable[[argparse.ArgumentParser], None]
    parse: Callable[[argparse.Namespace], A]
    run: Callable[[A, View], int]
    settings: Callable[[A], Settings | None] = lambda args: None


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
    overrides: dict[str, Any] = {}
    if concurrency is not None:
        overrides["concurrency"] = concurrency
    if max_changes is not None:
        overrides["max_changes"] = max_changes
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise UsageError(f"invalid configuration: {problems}") from None


def parse_outputs(namespace: argparse.Namespace) -> Outputs:
    """Where results go, from the flags `add_output_flags` added and `--report`."""
    return Outputs(
        report=namespace.report,
        metrics_file=namespace.metrics_file,
        pushgateway=namespace.pushgateway,
        progress=not namespace.no_progress,
    )


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
