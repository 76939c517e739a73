"""`provisioner plan`: show what apply would do; reads only."""

from __future__ import annotations

import argparse
import json
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
from provisioner.cli.render import plan_json, plan_summary_line, render_plan
from provisioner.reconcile import pipeline
from provisioner.reconcile.model import Plan, Planned
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
        blocked = {key: str(error) for key, error in planned.blocked.items()}
        print(json.dumps(plan_json(planned.plan, blocked), indent=2))
    if planned.blocked:  # those keys were not planned: neither "no changes" nor "changes"
        return EXIT_FAILED
    if args.detailed_exitcode and planned.plan.has_changes:
        return EXIT_CHANGES
    return EXIT_OK


async def _plan(job: Job) -> Planned:
    manifests = pipeline.load(job)
    async with open_session(job, manifests) as session:
        planned = await pipeline.make_plan(session, prune=job.prune, replace=job.replace)
    for key, error in planned.blocked.items():
        err(f"cannot plan {key}: {error}", "plan.blocked", "warning", key=key, error=str(error))
    return planned


def show_plan(the_plan: Plan) -> None:
    """The changes and the summary line; nothing when quiet and nothing would change."""
    if human.voice().quiet and not the_plan.has_changes:
        return
    if not human.voice().json:
        err(render_plan(the_plan))
        return
    show_changes(the_plan)
    summary = plan_json(the_plan)["summary"]
    err(plan_summary_line(the_plan), "plan.summary", changes=the_plan.has_changes, **summary)
