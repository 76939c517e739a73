"""The `provisioner` entry point: parse flags, run a command, map its errors to exit codes."""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections.abc import Sequence
from importlib import metadata

from provisioner.cli import apply, human, plan, run, schema, simulate, validate
from provisioner.cli.common import EXIT_FAILED, EXIT_INVALID, err
from provisioner.errors import (
    AuthError,
    BudgetExceeded,
    ManifestError,
    ProvisionerError,
    UsageError,
    first_error,
)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script and `python -m provisioner`."""
    args = build_parser().parse_args(argv)
    # What start-up loaded lives as long as the process: keep every collection from walking it.
    gc.freeze()
    try:
        return int(args.handler(args))
    except BaseException as exc:  # task groups wrap errors: map the lone one inside
        code = exit_code(first_error(exc))
        if code is None:
            raise
        return code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="provisioner",
        description="Provision Streamkap API client credentials from YAML manifests.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in (validate, plan, apply, run, simulate, schema):
        command.add_parser(commands)
    return parser


def version() -> str:
    """The installed distribution's version; a checkout that was never installed says so."""
    try:
        return metadata.version("streamkap-provisioner")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def exit_code(error: BaseException) -> int | None:
    """Report an error on stderr and return its exit code; None for one that is a bug."""
    if isinstance(error, ManifestError):
        _manifest_problems(error)
        return EXIT_INVALID
    if isinstance(error, UsageError | AuthError | BudgetExceeded):
        _failed(error, EXIT_INVALID)
        return EXIT_INVALID
    if isinstance(error, ProvisionerError):
        _failed(error, EXIT_FAILED)
        return EXIT_FAILED
    if isinstance(error, KeyboardInterrupt):
        err("interrupted", "command.interrupted", "error")
        return EXIT_FAILED
    if isinstance(error, BrokenPipeError):  # stdout closed early (`| head`): not ours to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED
    return None


def _manifest_problems(error: ManifestError) -> None:
    """Each problem on its own line, then their count; in JSON mode, one event."""
    count = f"error: {len(error.problems)} problem(s) in the manifests; nothing was changed"
    if human.voice().json:
        err(count, "manifests.invalid", "error", problems=error.problems)
        return
    for line in error.problems:
        err(line)
    err(count)


def _failed(error: BaseException, code: int) -> None:
    kind = type(error).__name__
    err(f"error: {error}", "command.failed", "error", error=str(error), error_type=kind, exit=code)
