"""What the commands share: exit codes, and the job built from a command's arguments."""

from __future__ import annotations

from typing import TYPE_CHECKING

from provisioner.logs import scrub_url
from provisioner.manifest import DEFAULT_SINK
from provisioner.sinks import SinkDefinition, parse_sink_uri

if TYPE_CHECKING:
    from provisioner.cli.arguments import JobArgs
    from provisioner.reconcile.session import Job

EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_CHANGES = 0, 1, 2, 3


def job_from(args: JobArgs) -> Job:
    """The job the arguments ask for; a `--sink` URI that cannot be read is a usage error."""
    # Imported here: `validate` and `schema` need the exit codes, not the session's HTTP stack.
    from provisioner.reconcile.session import Job

    return Job(
        paths=args.paths,
        settings=args.settings,
        cli_sinks=cli_sinks(args.sink),
        sink_flag=scrub_url(args.sink) if args.sink else None,
        prune=args.prune,
        replace=args.replace,
        simulate=args.simulate,
    )


def cli_sinks(uri: str | None) -> tuple[SinkDefinition, ...]:
    """The `default` sink `--sink URI` defines, if given."""
    return (parse_sink_uri(DEFAULT_SINK, uri),) if uri else ()
