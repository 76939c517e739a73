"""`provisioner plan`: show what apply would do; reads only."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import anyio

from provisioner.cli import human
from provisioner.cli.common import (
    EXIT_CHANGES,
    EXIT_FAILED,
    EXIT_OK,
    add_budget_flag,
    add_paths,
    add_replace_flag,
    add_run_flags,
    err,
    job_from,
    settings_from,
)
from provisioner.cli.outputs import show_changes
from provisioner.cli.render import plan_json, plan_summary_line, render_plan, use_color
from provisioner.model import Kind, Plan, Planned
from provisioner.reconcile import pipeline
from provisioner.reconcile.session import Job, open_session


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("plan", help="show what apply would do; no writes")
    add_paths(parser)
    add_run_flags(parser, prune_help="also plan the deletion of orphaned credentials")
    add_budget_flag(parser)
    add_replace_flag(parser)
    parser.add_argument("--json", action="store_true", help="print the plan as JSON on stdout")
    parser.add_argument(
        "--detailed-exitcode", action="store_true", help="exit 3 when changes are pending"
    )
    parser.set_defaults(handler=plan)


def plan(args: argparse.Namespace) -> int:
    job = job_from(args, settings_from(args))
    planned = anyio.run(_plan, job)
    show_plan(planned.plan)
    if planned.refusal is not None:
        err(
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


async def _plan(job: Job) -> Planned:
    manifests = pipeline.load(job)
    async with open_session(job, manifests) as session:
        return await pipeline.make_plan(session, prune=job.prune, replace=job.replace)


def show_plan(the_plan: Plan) -> None:
    """The changes, what could not be planned, and the summary line; nothing when quiet and
    there is neither a change nor a blocked credential."""
    blocked = the_plan.count(Kind.BLOCKED)
    if human.voice().quiet and not the_plan.has_changes and not blocked:
        return
    if not human.voice().json:
        err(render_plan(the_plan, color=use_color(sys.stderr, os.environ)))
        return
    show_changes(the_plan)
    summary = plan_json(the_plan)["summary"]
    err(plan_summary_line(the_plan), "plan.summary", changes=the_plan.has_changes, **summary)
