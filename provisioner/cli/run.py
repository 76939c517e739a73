"""`provisioner run`: apply on a cadence until SIGTERM/SIGINT, finishing the work in flight.

Only configuration errors of the first cycle end the loop (exit 2). Later, invalid manifests skip
their cycle (nothing is written, so nothing of the last good state is pruned) and a failing cycle
is logged; the next cycle tries again.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import asdict, dataclass, field
from pathlib import Path

import anyio
import structlog

from provisioner.cli import metrics
from provisioner.cli.arguments import (
    Command,
    JobArgs,
    add_budget_flag,
    add_output_flags,
    add_paths,
    add_run_flags,
    duration_arg,
    interval_arg,
)
from provisioner.cli.common import EXIT_FAILED, EXIT_OK, job_from
from provisioner.cli.outputs import Outputs, apply_once, finish, parse_outputs
from provisioner.cli.render import summarize
from provisioner.cli.schedule import Cadence, run_every
from provisioner.cli.signals import stop_on_signals
from provisioner.cli.views import View
from provisioner.errors import AuthError, BudgetExceeded, ManifestError, UsageError, first_error
from provisioner.reconcile.session import Job, Simulated
from provisioner.runtime import Halt

log = structlog.get_logger("provisioner.run")

#: Errors that mean "fix the configuration": fatal on the first cycle, skipped later.
CONFIG_ERRORS = (ManifestError, UsageError, AuthError)


@dataclass(frozen=True)
class RunArgs:
    """`run`'s arguments."""

    job: JobArgs
    outputs: Outputs
    cadence: Cadence

    @classmethod
    def parse(cls, namespace: argparse.Namespace) -> RunArgs:
        job, outputs = JobArgs.parse(namespace), parse_outputs(namespace)
        return cls(job, outputs, Cadence(namespace.every, namespace.jitter))


def add_flags(parser: argparse.ArgumentParser) -> None:
    add_paths(parser)
    add_run_flags(parser, prune_help="delete orphaned credentials")
    add_budget_flag(parser)
    parser.add_argument(
        "--every", required=True, type=interval_arg, metavar="DURATION", help="e.g. 15m (s,m,h,d,w)"
    )
    parser.add_argument(
        "--jitter",
        type=duration_arg,
        default=0.0,
        metavar="DURATION",
        help="add 0..DURATION per wait",
    )
    parser.add_argument("--report", type=Path, metavar="FILE", help="the last cycle's JSON report")
    add_output_flags(parser)


def run(args: RunArgs, view: View) -> int:
    job = job_from(args.job)
    if job.simulate:  # one simulator for the whole run, so that cycles converge
        job = dataclasses.replace(job, simulator=Simulated.resumed(job.cwd))
    args.outputs.check()  # before any API call, so a typo costs no run
    reconciler = Reconciler(job, args.outputs, view)
    return int(anyio.run(reconcile, reconciler, args.cadence))


@dataclass
class Reconciler:
    """One `run`: the job re-read each cycle, where results go, and the process's metrics."""

    job: Job
    outputs: Outputs
    view: View
    recorder: metrics.Metrics = field(default_factory=metrics.Metrics)
    cycles: int = 0  # started so far
    halt: Halt = field(default_factory=Halt)  # the process's: a signal stops the cycle in flight

    async def cycle(self, number: int) -> None:
        """Apply once; a failure is logged, except configuration errors on the first cycle."""
        self.cycles = number
        log.info("cycle.started", cycle=number)
        try:
            # A stop during a cycle starts no new action; those in flight finish.
            result = await apply_once(self.job, self.outputs, self.recorder, self.view, self.halt)
        except Exception as exc:
            error = first_error(exc)
            if isinstance(error, BudgetExceeded):  # not a configuration error: try again later
                log.error("cycle.skipped", cycle=number, reason=str(error))
                return
            if number == 1 and isinstance(error, CONFIG_ERRORS):
                raise error from None
            _log_failure(number, error)
            return
        finish(result, self.outputs, self.view)
        summary = summarize(result.plan, result.outcomes)
        log.info("cycle.finished", cycle=number, run_id=result.run_id, **asdict(summary))


def _log_failure(number: int, error: BaseException) -> None:
    if isinstance(error, ManifestError):
        log.error(
            "cycle.skipped",
            cycle=number,
            reason="invalid manifests: nothing was changed; the next cycle reads them again",
            problems=list(error.problems),
        )
    else:
        log.error("cycle.failed", cycle=number, error=str(error), error_type=type(error).__name__)


async def reconcile(reconciler: Reconciler, cadence: Cadence) -> int:
    """Run until the first SIGTERM/SIGINT has let the work in flight finish; 0, or 1 if aborted.

    A second signal cancels the cycle in flight (what a re-run repairs, as after SIGKILL).
    """
    log.info("run.started", every=cadence.every, jitter=cadence.jitter)
    async with stop_on_signals(on_stop=_stopping, on_abort=_aborted) as stop:
        reconciler.halt = stop.requested
        await run_every(reconciler.cycle, cadence, stop.requested)
    log.info("run.stopped", cycles=reconciler.cycles, aborted=stop.aborted)
    return EXIT_FAILED if stop.aborted else EXIT_OK


def _stopping(name: str) -> None:
    log.info(
        "run.stopping", signal=name, detail="finishing the work in flight, starting nothing new"
    )


def _aborted(name: str) -> None:
    log.warning("run.aborted", signal=name)


COMMAND = Command(
    "run",
    add_flags,
    RunArgs.parse,
    run,
    settings=lambda args: args.job.settings,
)
