"""The `provisioner` entry point: parse flags, choose the view, run a command, map its errors to
exit codes.

Start-up imports only what the command given uses: the module of each command is imported when
that command is chosen, so `--version` and `--help` import none, and `validate` none of the
network stack (a test holds it: tests/e2e/test_startup.py).
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections.abc import Iterable, Sequence
from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from provisioner.cli.arguments import Command, Configured
    from provisioner.cli.views import View

#: Each command and its one-line help; its flags and its work are in `provisioner.cli.<name>`.
COMMANDS: dict[str, str] = {
    "validate": "load and validate manifests; no network",
    "plan": "show what apply would do; no writes",
    "apply": "reconcile: create, replace and delete",
    "run": "apply on a schedule until SIGTERM/SIGINT; finishes in-flight work first",
    "simulate": "serve the simulator on loopback",
    "schema": "print the manifest JSON Schema",
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script and `python -m provisioner`."""
    argv = sys.argv[1:] if argv is None else list(argv)
    collecting = gc.isenabled()
    gc.disable()  # start-up makes no garbage worth a collection: imports and the parser
    try:
        namespace = build_parser(chosen_in(argv)).parse_args(argv)
    finally:
        # What start-up loaded lives as long as the process: keep every collection from walking it.
        gc.freeze()
        if collecting:
            gc.enable()
    if namespace.no_color:  # the one switch every renderer reads: ours, structlog's, rich's
        os.environ["NO_COLOR"] = "1"
    command: Command[Any] = namespace.chosen
    from provisioner.cli.views import HumanView

    view: View = HumanView()  # plain lines until settings are read (`simulate`, `schema`: always)
    try:
        args = command.parse(namespace)
        settings = command.settings(args)
        if settings is not None:
            view = configured(settings)
        return int(command.run(args, view))
    except BaseException as exc:  # task groups wrap errors: map the lone one inside
        from provisioner.errors import first_error

        code = exit_code(first_error(exc), view)
        if code is None:
            raise
        return code


def configured(settings: Configured) -> View:
    """Configure logging from the settings and choose the view to match: the one place that does.

    JSON events where the logs are JSON; quiet at `warning` and above.
    """
    import logging

    from provisioner.cli.views import HumanView, JsonView
    from provisioner.logs import LEVELS, configure_logging, uses_json

    configure_logging(settings.log_level, settings.log_format)
    quiet = LEVELS.get(settings.log_level, logging.INFO) >= logging.WARNING
    return JsonView(quiet) if uses_json(settings.log_format, sys.stderr) else HumanView(quiet)


def chosen_in(argv: Sequence[str]) -> list[str]:
    """The command `argv` names, if any: its first word that is not an option (the top level
    takes no option with a value)."""
    return [word for word in argv if not word.startswith("-")][:1]


def build_parser(flags_of: Iterable[str] = COMMANDS) -> argparse.ArgumentParser:
    """The parser, with the flags of the commands `flags_of` names (each command's module is
    imported for its flags); the others are listed with their help only."""
    flags_of = set(flags_of)
    parser = argparse.ArgumentParser(
        prog="provisioner",
        description="Provision Streamkap API client credentials from YAML manifests.",
    )
    parser.add_argument("--version", action=_Version, nargs=0, help="print the version and exit")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, text in COMMANDS.items():
        subparser = commands.add_parser(name, help=text)
        if name in flags_of:
            command = command_named(name)
            command.flags(subparser)
            subparser.add_argument(
                "--no-color", action="store_true", help="no colour, even on a terminal (NO_COLOR=1)"
            )
            subparser.set_defaults(chosen=command)
    return parser


def command_named(name: str) -> Command[Any]:
    """The command `name`, its module imported now."""
    command: Command[Any] = import_module(f"provisioner.cli.{name}").COMMAND
    return command


class _Version(argparse.Action):
    """`--version`: the installed version, looked up only when asked for."""

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> None:
        print(f"{parser.prog} {version()}")
        parser.exit()


def version() -> str:
    """The installed distribution's version; a checkout that was never installed says so."""
    from importlib import metadata

    try:
        return metadata.version("streamkap-provisioner")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def exit_code(error: BaseException, view: View) -> int | None:
    """Report an error on stderr and return its exit code; None for one that is a bug."""
    from provisioner.cli.common import EXIT_FAILED, EXIT_INVALID
    from provisioner.errors import (
        AuthError,
        BudgetExceeded,
        ManifestError,
        ProvisionerError,
        UsageError,
    )

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
