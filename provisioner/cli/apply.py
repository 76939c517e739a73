"""`provisioner apply`: reconcile once. The first signal lets work in flight finish."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import anyio

from provisioner.cli import metrics
from provisioner.cli.arguments import (
    Command,
    JobArgs,
    add_budget_flag,
    add_output_flags,
    add_paths,
    add_replace_flag,
    add_run_flags,
)
from provisioner.cli.common import EXIT_FAILED, EXIT_OK, job_from
from provisioner.cli.outputs import Outputs, apply_once, finish, parse_outputs
from provisioner.cli.signals import Stop, stop_on_signals
from provisioner.cli.views import View
from provisioner.model import RunResult
from provisioner.reconcile.session import Job


@dataclass(frozen=True)
class ApplyArgs:
    """`apply`'s arguments."""

    job: JobArgs
    outputs: Outputs

    @classmethod
    def parse(cls, namespace: argparse.Namespace) -> ApplyArgs:
        return cls(JobArgs.parse(namespace, replace=namespace.replace), parse_outputs(namespace))


def add_flags(parser: argparse.ArgumentParser) -> None:
    add_paths(parser)
    add_run_flags(parser, prune_help="delete orphaned credentials")
    add_budget_flag(parser)
    add_replace_flag(parser)
    parser.add_argument("--report", type=Path, metavar="FILE", help="write a JSON run report")
    add_output_flags(parser)


def apply(args: ApplyArgs, view: View) -> int:
    job = job_from(args.job)
    args.outputs.check()  # before any API call, so a typo costs no run
    results: list[RunResult] = []
    stops: list[Stop] = []
    recorder = metrics.Metrics()
    anyio.run(_apply, job, args.outputs, recorder, view, results, stops)
    if not results:  # a second signal cut the run short
        view.say(
            "aborted: no summary; the next apply repairs what was cut short",
            "apply.aborted",
            "error",
        )
        return EXIT_FAILED
    ok = finish(results[0], args.outputs, view) and not recorder.textfile_failed
    return EXIT_OK if ok and not stops[0].requested.is_set() else EXIT_FAILED


async def _apply(
    job: Job,
    outputs: Outputs,
    recorder: metrics.Metrics,
    view: View,
    results: list[RunResult],
    stops: list[Stop],
) -> None:
    notices = _Notices(view)
    async with stop_on_signals(on_stop=notices.stopping, on_abort=notices.aborting) as stop:
        stops.append(stop)
        results.append(await apply_once(job, outputs, recorder, view, stop.requested))


@dataclass(frozen=True)
class _Notices:
    """What `apply` says when a signal comes."""

    view: View

    def stopping(self, name: str) -> None:
        text = f"{name}: stopping: finishing work in flight, starting nothing new"
        self.view.say(text, "apply.stopping", "warning", signal=name)

    def aborting(self, name: str) -> None:
        text = "aborting: work in flight is cut short; the next apply repairs it"
        self.view.say(text, "apply.aborting", "warning", signal=name)


COMMAND = Command(
    "apply",
    add_flags,
    ApplyArgs.parse,
    apply,
    settings=lambda args: args.job.settings,
)
