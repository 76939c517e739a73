"""`provisioner validate`: load and validate manifests; no network.

It imports nothing that calls out (tests/e2e/test_startup.py): a pre-commit hook or a CI step
pays the start-up on every run.
"""

from __future__ import annotations

import argparse
import gc
import os
from dataclasses import dataclass
from pathlib import Path

from provisioner.cli.arguments import Command, LocalSettings, add_paths
from provisioner.cli.common import EXIT_OK, cli_sinks
from provisioner.cli.render import counted
from provisioner.cli.views import View
from provisioner.logs import scrub_url
from provisioner.manifest import load_manifests
from provisioner.manifest.unused import warn_if_sink_unused


@dataclass(frozen=True)
class ValidateArgs:
    """`validate`'s arguments: the manifests, the `default` sink, and the settings it reads."""

    paths: tuple[Path, ...]
    settings: LocalSettings
    sink: str | None = None

    @classmethod
    def parse(cls, namespace: argparse.Namespace) -> ValidateArgs:
        settings = LocalSettings.read(os.environ)
        return cls(tuple(namespace.paths), settings, namespace.sink)


def add_flags(parser: argparse.ArgumentParser) -> None:
    add_paths(parser)
    parser.add_argument("--sink", metavar="URI", help="the `default` sink, e.g. file:./secrets")


def validate(args: ValidateArgs, view: View) -> int:
    limits = args.settings
    collecting = gc.isenabled()
    gc.disable()  # acyclic data, freed by reference counting: as `pipeline.load` does
    try:
        manifests = load_manifests(
            args.paths,
            cli_sinks(args.sink),
            max_file_bytes=limits.max_manifest_file_bytes,
            max_run_bytes=limits.max_manifest_run_bytes,
        )
    finally:
        if collecting:
            gc.enable()
    warn_if_sink_unused(manifests, scrub_url(args.sink) if args.sink else None)
    services = {credential.service for credential in manifests.credentials}
    counts = {
        "credentials": len(manifests.credentials),
        "services": len(services),
        "files": len(manifests.files),
    }
    if not view.quiet:  # at warning and above, valid manifests are no news
        text = "OK: " + " ".join(
            f"{counted(counts[name], name)}{after}"
            for name, after in (("credentials", " for"), ("services", " in"), ("files", ""))
        )
        view.say(text, "manifests.valid", "info", **counts)
    return EXIT_OK


COMMAND = Command(
    "validate",
    add_flags,
    ValidateArgs.parse,
    validate,
    settings=lambda args: args.settings,
)
