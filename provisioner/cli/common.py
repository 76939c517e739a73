"""What the commands share: exit codes, common flags, settings and the job built from flags."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from provisioner.cli import human
from provisioner.cli.outputs import Outputs
from provisioner.config import Settings
from provisioner.errors import UsageError
from provisioner.logs import configure_logging
from provisioner.manifest import DEFAULT_SINK
from provisioner.manifest.durations import parse_duration
from provisioner.reconcile.session import Job
from provisioner.sinks import parse_sink_uri

EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_CHANGES = 0, 1, 2, 3


def err(message: str, event: str = "message", level: str = "info", **fields: Any) -> None:
    """Human output goes to stderr (in JSON mode as the event `event`); stdout is for machines."""
    human.say(message, event, level, **fields)


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


def settings_from(args: argparse.Namespace) -> Settings:
    """Settings from the environment, overridden by flags; logging configured from them."""
    overrides: dict[str, Any] = {}
    if getattr(args, "concurrency", None) is not None:
        overrides["concurrency"] = args.concurrency
    if getattr(args, "max_changes", None) is not None:
        overrides["max_changes"] = args.max_changes
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise UsageError(f"invalid configuration: {problems}") from None
    configure_logging(settings.log_level, settings.log_format)
    human.configure(settings.log_level, settings.log_format)
    return settings


def job_from(args: argparse.Namespace, settings: Settings) -> Job:
    sink_uri = getattr(args, "sink", None)
    cli_sinks = (parse_sink_uri(DEFAULT_SINK, sink_uri),) if sink_uri else ()
    return Job(
        paths=tuple(args.paths),
        settings=settings,
        cli_sinks=cli_sinks,
        prune=getattr(args, "prune", False),
        replace=frozenset(getattr(args, "replace", None) or ()),
        simulate=getattr(args, "simulate", False),
    )


def outputs_from(args: argparse.Namespace) -> Outputs:
    """Where results go; checked before any API call, so a typo costs no run."""
    outputs = Outputs(
        report=args.report,
        metrics_file=args.metrics_file,
        pushgateway=args.pushgateway,
        progress=not args.no_progress and not human.voice().json,  # JSON lines only
    )
    outputs.check()
    return outputs


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
