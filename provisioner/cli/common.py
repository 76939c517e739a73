"""What the commands share: exit codes, and the job built from a command's arguments."""

from __future__ import annotations

from provisioner.cli.arguments import JobArgs
from provisioner.logs import scrub_url
from provisioner.manifest import DEFAULT_SINK
from provisioner.reconcile.session import Job
from provisioner.sinks import parse_sink_uri

EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_CHANGES = 0, 1, 2, 3


def job_from(args: JobArgs) -> Job:
    """The job the arguments ask for; a `--sink` URI that cannot be read is a usage error."""
    cli_sinks = (parse_sink_uri(DEFAULT_SINK, args.sink),) if args.sink else ()
    return Job(
        paths=args.paths,
        settings=args.settings,
        cli_sinks=cli_sinks,
        sink_flag=scrub_url(args.sink) if args.sink else None,
        prune=args.prune,
        replace=args.replace,
        simulate=args.simulate,
    )
