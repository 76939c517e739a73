"""`provisioner apply`: reconcile once. The first signal lets work in flight finish."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import anyio

from provisioner.cli import metrics
from provisioner.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    add_budget_flag,
    add_output_flags,
    add_paths,
    add_replace_flag,
    add_run_flags,
    err,
    job_from,
    outputs_from,
    settings_from,
)
from provisioner.cli.outputs import Outputs, apply_once, finish
from provisioner.cli.signals import Stop, stop_on_signals
from provisioner.model import RunResult
from provisioner.reconcile.session import Job


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("apply", help="reconcile: create, replace and delete")
    add_paths(parser)
    add_run_flags(parser, prune_help="delete orphaned credentials")
    add_budget_flag(parser)
    add_replace_flag(parser)
    parser.add_argument("--report", type=Path, metavar="FILE", help="write a JSON run report")
    add_output_flags(parser)
    parser.set_defaults(handler=apply)


def apply(args: argparse.Namespace) -> int:
    job = job_from(args, settings_from(args))
    outputs = outputs_from(args)
    results: list[RunResult] = []
    stops: list[Stop] = []
    recorder = metrics.Metrics()
    anyio.run(_apply, job, outputs, recorder, results, stops)
    if not results:  # a second signal cut the run short
        err(
            "aborted: no summary; the next apply repairs what was cut short",
            "apply.aborted",
            "error",
        )
        return EXIT_FAILED
    ok = finish(results[0], outputs) and not recorder.textfile_failed
    return EXIT_OK if ok and not stops[0].requested.is_set() else EXIT_FAILED


async def _apply(
    job: Job,
    outputs: Outputs,
    recorder: metrics.Metrics,
    results: list[RunResult],
    stops: list[Stop],
) -> None:
    async with stop_on_signals(on_stop=_stopping, on_abort=_aborting) as stop:
        stops.append(stop)
        results.append(await apply_once(job, outputs, recorder, stop.requested))


def _stopping(name: str) -> None:
    text = f"{name}: stopping: finishing work in flight, starting nothing new"
    err(text, "apply.stopping", "warning", signal=name)


def _aborting(name: str) -> None:
    text = "aborting: work in flight is cut short; the next apply repairs it"
    err(text, "apply.aborting", "warning", signal=name)
