"""The stages in order: load -> resolve -> observe -> plan -> execute.

One stop event and one observer reach into a run: the caller decides when to stop starting new
work (a signal) and what to show (progress, the change lines); the stages know neither.
"""

from __future__ import annotations

import gc
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Protocol

import anyio
import structlog

from provisioner.errors import SinkError
from provisioner.manifest import Manifests, load_manifests
from provisioner.reconcile.engine import Engine
from provisioner.reconcile.model import Action, Outcome, Plan, Planned, RunResult, Status
from provisioner.reconcile.observe import observe
from provisioner.reconcile.plan import plan
from provisioner.reconcile.resolve import resolve_roles
from provisioner.reconcile.session import Job, Session

log = structlog.get_logger("provisioner.pipeline")


class Observer(Protocol):
    """Sees a run as it goes: the plan about to be carried out, then each outcome."""

    def on_plan(self, plan: Plan) -> None: ...

    def on_outcome(self, outcome: Outcome) -> None: ...


class Unobserved:
    """An observer that shows nothing."""

    def on_plan(self, plan: Plan) -> None:
        return None

    def on_outcome(self, outcome: Outcome) -> None:
        return None


@contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic garbage collection inside the block: synchronous work only, never an await.

    Loading and planning build hundreds of thousands of acyclic objects; each full collection
    would walk them all again while reference counting frees them anyway.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def load(job: Job) -> Manifests:
    """Validate the manifests; no network."""
    with collector_paused():
        return load_manifests(job.paths, job.cli_sinks)


async def make_plan(session: Session, *, prune: bool) -> Planned:
    """Resolve roles, observe the remote and the sinks, and plan. Reads only."""
    observed = await observe(
        session.client,
        session.manifests.credentials,
        session.sinks,
        session.settings.concurrency,
    )
    with collector_paused():
        desired = resolve_roles(session.manifests, observed.roles)
        result = plan(
            desired, observed.remote, observed.holdings, now=datetime.now(UTC), prune=prune
        )
    counts = {str(kind): count for kind, count in result.counts.items()}
    log.info("plan.ready", actions=len(result.actions), **counts)
    for key, error in observed.blocked.items():
        log.error("sink.unreadable", key=key, sink=error.sink, error=str(error))
    return Planned(result, observed.blocked)


async def apply(
    session: Session,
    *,
    prune: bool,
    stop: anyio.Event | None = None,
    observer: Observer | None = None,
) -> RunResult:
    """Plan, then carry out every change; once `stop` is set, no new action is started.

    The observer sees the runnable plan before any write, then each outcome as it comes.
    """
    observer = observer or Unobserved()
    run_id = uuid.uuid4().hex[:12]
    started = datetime.now(UTC)
    structlog.contextvars.bind_contextvars(run_id=run_id)
    try:
        planned = await make_plan(session, prune=prune)
        the_plan, blocked = planned.plan, planned.blocked
        engine = Engine(
            session.client,
            session.sinks,
            concurrency=session.settings.concurrency,
            max_attempts=session.settings.max_attempts,
            stop=stop or anyio.Event(),
            on_outcome=observer.on_outcome,
        )
        runnable = [action for action in the_plan.actions if action.key not in blocked]
        observer.on_plan(Plan(tuple(runnable)))
        outcomes = await engine.execute(runnable)
        if engine.denied is not None:  # the API refused the provisioner itself: say so, exit 2
            raise engine.denied
        outcomes += _blocked_outcomes(the_plan, blocked)
    finally:
        structlog.contextvars.unbind_contextvars("run_id")
    return RunResult(run_id, started, datetime.now(UTC), the_plan, tuple(outcomes))


def _blocked_outcomes(the_plan: Plan, blocked: Mapping[str, SinkError]) -> list[Outcome]:
    """One failure per credential left alone because one of its sinks could not be read."""
    first: dict[str, Action] = {}
    for action in the_plan.actions:
        if action.key in blocked:
            first.setdefault(action.key, action)
    return [Outcome(a, Status.FAILED, error=str(blocked[key])) for key, a in first.items()]
