"""`provisioner validate`: load and validate manifests; no network."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from provisioner.cli.arguments import Command, JobArgs, add_paths, read_settings
from provisioner.cli.common import EXIT_OK, job_from
from provisioner.cli.render import counted
from provisioner.cli.views import View
from provisioner.reconcile import pipeline


@dataclass(frozen=True)
class ValidateArgs:
    """`validate`'s arguments: the manifests, and the `default` sink."""

    job: JobArgs

    @classmethod
    def parse(cls, namespace: argparse.Namespace) -> ValidateArgs:
        paths = tuple(namespace.paths)
        return cls(JobArgs(paths=paths, settings=read_settings(), sink=namespace.sink))


def add_flags(parser: argparse.ArgumentParser) -> None:
    add_paths(parser)
    parser.add_argument("--sink", metavar="URI", help="the `default` sink, e.g. file:./secrets")


def validate(args: ValidateArgs, view: View) -> int:
    manifests = pipeline.load(job_from(args.job))
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
    "load and validate manifests; no network",
    add_flags,
    ValidateArgs.parse,
    validate,
    settings=lambda args: args.job.settings,
)
