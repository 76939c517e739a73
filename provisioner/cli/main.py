"""The `provisioner` entry point: parse flags, choose the view, run a command, map its errors to
exit codes."""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
from collections.abc import Sequence
from importlib import metadata
from typing import Any

from provisioner.cli import apply, plan, run, schema, simulate, validate
from provisioner.cli.arguments import Command
from provisioner.cli.common import EXIT_FAILED, EXIT_INVALID
from provisioner.cli.views import HumanView, JsonView, View
from provisioner.config import Settings
from provisioner.errors import (
    AuthError,
    BudgetExceeded,
    ManifestError,
    ProvisionerError,
    UsageError,
    first_error,
)
from provisioner.logs import LEVELS, configure_logging, uses_json

COMMANDS: tuple[Command[Any], ...] = (
    validate.COMMAND,
    plan.COMMAND,
    apply.COMMAND,
    run.COMMAND,
    simulate.COMMAND,
    schema.COMMAND,
)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script and `python -m provisioner`."""
    namespace = build_parser().parse_args(argv)
    if namespace.no_color:  # the one switch every renderer reads: ours, structlog's, rich's
        os.environ["NO_COLOR"] = "1"
    # What start-up loaded lives as long as the process: keep every collection from walking it.
    gc.freeze()
    command: Command[Any] = namespace.chosen
    view: View = HumanView()  # plain lines until settings are read (`simulate`, `schema`: always)
    try:
        args = command.parse(namespace)
        settings = command.settings(args)
        if settings is not None:
            view = configured(settings)
        return int(command.run(args, view))
    except BaseException as exc:  # task groups wrap errors: map the lone one inside
        code = exit_code(first_error(exc), view)
        if code is None:
            raise
        return code


def configured(settings: Settings) -> View:
    """Configure logging from the settings and choose the view to match: the one place that does.

    JSON events where the logs are JSON; quiet at `warning` and above.
    """
    configure_logging(settings.log_level, settings.log_format)
    quiet = LEVELS.get(settings.log_level, logging.INFO) >= logging.WARNING
    return JsonView(quiet) if uses_json(settings.log_format, sys.stderr) else HumanView(quiet)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="provisioner",
        description="Provision Streamkap API client credentials from YAML manifests.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        subparser = commands.add_parser(command.name, help=command.help)
        command.flags(subparser)
        subparser.add_argument(
            "--no-color", action="store_true", help="no colour, even on a terminal (as NO_COLOR=1)"
        )
        subparser.set_defaults(chosen=command)
    return parser


def version() -> str:
    """The installed distribution's version; a checkout that was never installed says so."""
    try:
        return metadata.version("streamkap-provisioner")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def exit_code(error: BaseException, view: View) -> int | None:
    """Report an error on stderr and return its exit code; None for one that is a bug."""
    if isinstance(error, ManifestError):
        count = f"error: {len(error.problems)} problem(s) in the manifests; nothing was changed"
        view.problems(error.problems, count)
        return EXIT_INVALID
    if isinstance(error, UsageError | AuthError | BudgetExceeded):
        _failed(error, EXIT_INVALID, view)
        return EXIT_INVALID
    if isinstance(error, ProvisionerError):
        _failed(error, EXIT_FAILED, view)
        return EXIT_FAILED
    if isinstance(error, KeyboardInterrupt):
        view.say("interrupted", "command.interrupted", "error")
        return EXIT_FAILED
    if isinstance(error, BrokenPipeError):  # stdout closed early (`| head`): not ours to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED
    return None


def _failed(error: BaseException, code: int, view: View) -> None:
    kind = type(error).__name__
    text = f"error: {error}"
    view.say(text, "command.failed", "error", error=str(error), error_type=kind, exit=code)
