"""`provisioner validate`: load and validate manifests; no network."""

from __future__ import annotations

import argparse
from typing import Any

from provisioner.cli import human
from provisioner.cli.common import EXIT_OK, add_paths, err, job_from, settings_from
from provisioner.reconcile import pipeline


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("validate", help="load and validate manifests; no network")
    add_paths(parser)
    parser.add_argument("--sink", metavar="URI", help="the `default` sink, e.g. file:./secrets")
    parser.set_defaults(handler=validate)


def validate(args: argparse.Namespace) -> int:
    manifests = pipeline.load(job_from(args, settings_from(args)))
    services = {credential.service for credential in manifests.credentials}
    counts = {
        "credentials": len(manifests.credentials),
        "services": len(services),
        "files": len(manifests.files),
    }
    if not human.voice().quiet:  # at warning and above, valid manifests are no news
        text = "OK: {credentials} credentials for {services} services in {files} files"
        err(text.format(**counts), "manifests.valid", "info", **counts)
    return EXIT_OK
