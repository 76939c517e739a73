"""`provisioner plan`: show what apply would do; reads only."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass

import anyio

from provisioner.cli.arguments import (
    Command,
    JobArgs,
    add_budget_flag,
    add_paths,
    add_replace_flag,
    add_run_flags,
)
from provisioner.cli.common import EXIT_CHANGES, EXIT_FAILED, EXIT_OK, job_from
from provisioner.cli.render import plan_json
from provisioner.cli.views import View, has_news
from provisioner.model import Kind, Plan
from provisioner.reconcile import pipeline


@dataclass(frozen=True)
class PlanArgs:
    """`plan`'s arguments."""

    job: JobArgs
    json: bool = False
    detailed_exitcode: bool = False

    @classmethod
    def parse(cls, namespace: argparse.Namespace) -> PlanArgs:
        job = JobArgs.parse(namespace, replace=namespace.replace)
        return cls(job, json=namespace.json, detailed_exitcode=namespace.detailed_exitcode)


def add_flags(parser: argparse.ArgumentParser) -> None:
    add_paths(parser)
    add_run_flags(parser, prune_help="also plan the deletion of orphaned credentials")
    add_budget_flag(parser)
    add_replace_flag(parser)
    parser.add_argument("--json", action="store_true", help="print the plan as JSON on stdout")
    parser.add_argument(
        "--detailed-exitcode", action="store_true", help="exit 3 when changes are pending"
    )


def plan(args: PlanArgs, view: View) -> int:
    planned = anyio.run(pipeline.plan_job, job_from(args.job))
    show_plan(planned.plan, view)
    if planned.refusal is not None:
        view.say(
            f"apply would stop here, before any write: {planned.refusal}",
            "plan.refused",
            "warning",
            refusal=str(planned.refusal),
        )
    if args.json:
        print(json.dumps(plan_json(planned.plan), indent=2))
    if planned.plan.count(Kind.BLOCKED):  # not planned: neither "no changes" nor "changes"
        return EXIT_FAILED
    if args.detailed_exitcode and planned.plan.has_changes:
        return EXIT_CHANGES
    return EXIT_OK


def show_plan(the_plan: Plan, view: View) -> None:
    """The changes, what could not be planned, and the summary line; nothing when quiet and
    there is neither a change nor a blocked credential."""
    if has_news(the_plan) or not view.quiet:
        view.plan(the_plan)


COMMAND = Command(
    "plan",
    add_flags,
    PlanArgs.parse,
    plan,
    settings=lambda args: args.job.settings,
)
