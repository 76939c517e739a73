"""The stages in order: load -> observe -> resolve -> plan -> execute.

One halt and one observer reach into a run: the caller decides when to stop starting new work (a
signal sets the halt) and what to show (progress, the change lines, metrics); the stages know
neither.
`plan_job` and `apply_job` are a whole job, from the manifests to the plan or the outcomes.
"""

from __future__ import annotations

import functools
import gc
import uuid
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime

import structlog

from provisioner.errors import BudgetExceeded, SinkError, UsageError, did_you_mean
from provisioner.manifest import Manifests, load_manifests
from provisioner.manifest.unused import warn_if_sink_unused
from provisioner.model import Allowance, CredentialKind, Plan, Planned, Reason, RunResult
from provisioner.reconcile.budget import within_budget
from provisioner.reconcile.engine import Engine
from provisioner.reconcile.observe import observe, prove_sources
from provisioner.reconcile.plan import plan
from provisioner.reconcile.resolve import resolve_roles
from provisioner.reconcile.session import Job, Session, open_session
from provisioner.runtime import Halt, Observer, Unobserved, observing
from provisioner.streamkap import CredentialApi

log = structlog.get_logger("provisioner.pipeline")
_SHOWN_KEYS = 5  # keys named in a log event about many


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
    """Validate the manifests and the keys `--replace` names; no network."""
    with collector_paused():
        manifests = load_manifests(
            job.paths,
            job.cli_sinks,
            max_file_bytes=job.settings.max_manifest_file_bytes,
            max_run_bytes=job.settings.max_manifest_run_bytes,
        )
    keys = {credential.key for credential in manifests.credentials}
    unknown = sorted(job.replace - keys)
    if unknown:
        hints = "".join(did_you_mean(key, keys) for key in unknown)  # in the order of the keys
        raise UsageError(
            f"--replace {', '.join(unknown)}: no such credential in the manifests "
            f"(give <service>/<credential>){hints}"
        )
    warn_if_sink_unused(manifests, job.sink_flag)
    return manifests


async def make_plan(
    session: Session, *, prune: bool, replace: frozenset[str] = frozenset()
) -> Planned:
    """Resolve roles, observe the remote and the sinks, and plan. Reads only."""
    observed = await observe(
        session.client,
        session.manifests.credentials,
        session.sinks,
        session.settings.concurrency,
        failed_checks=session.failed_checks,
        prune=prune,
    )
    causes = {key: str(error) for key, error in observed.blocked.items()}
    with collector_paused():
        desired = resolve_roles(session.manifests, observed.roles)
        planner = functools.partial(
            plan,
            desired,
            observed.remote,
            observed.holdings,
            now=datetime.now(UTC),
            prune=prune,
            owner=session.manifests.owner,
            replace=replace,
            blocked=causes,
        )
        result = planner()
    # A restore copies a secret from a sibling sink: proven first by one login with it.
    records, unproven = await prove_sources(
        session.client.credential_api, session.sinks, result.actions, session.settings.concurrency
    )
    with collector_paused():
        if unproven:
            result = planner(unproven=unproven)
        verdict = within_budget(result, session.settings.max_changes)
    result = verdict.plan
    counts = {str(kind): count for kind, count in result.counts.items()}
    log.info("plan.ready", actions=len(result.actions), deferred=verdict.deferred, **counts)
    # People read it once per cause in the plan (cli.render.blocked_lines); this is diagnostics.
    for action in result.actions:  # each run says so, until they are unused or grace_max ends
        if action.reason is Reason.IN_USE:
            log.warning(
                "credential.in_use_past_grace",
                key=action.key,
                client_id=action.client_id,
                detail=action.detail,
            )
    for cause, keys in _by_cause(observed.blocked).items():
        log.debug("plan.blocked", error=cause, credentials=len(keys), keys=keys[:_SHOWN_KEYS])
    refusal = verdict.refusal() if verdict.exceeded else None
    return Planned(result, observed.blocked, refusal, records, room=verdict.room)


async def apply(
    session: Session,
    *,
    prune: bool,
    replace: frozenset[str] = frozenset(),
    observer: Observer | None = None,
) -> RunResult:
    """Plan, then carry out every change; once the session's halt is set, no new action starts.

    The observer sees the runnable plan before any write, then each outcome, retry and status.
    """
    with observing(observer or Unobserved()) as seen:
        return await _apply(session, prune=prune, replace=replace, observer=seen)


async def _apply(
    session: Session, *, prune: bool, replace: frozenset[str], observer: Observer
) -> RunResult:
    run_id = uuid.uuid4().hex[:12]
    started = datetime.now(UTC)
    structlog.contextvars.bind_contextvars(run_id=run_id)
    try:
        planned = await make_plan(session, prune=prune, replace=replace)
        the_plan, blocked = planned.plan, planned.blocked
        engine = Engine(
            session.client.credentials,
            session.sinks,
            concurrency=session.settings.concurrency,
            max_attempts=session.settings.max_attempts,
            sleep=session.client.requests.sleep,  # tied to the halt: no retry once stopping
            halt=session.halt,
            observer=observer,
            records=planned.records,
            allowance=Allowance(planned.room),
            project_keys=_project_keys(session, the_plan),
        )
        runnable = [action for action in the_plan.actions if action.key not in blocked]
        # The observer sees the blocked ones too: to say, once per cause, what was not planned.
        observer.on_plan(the_plan)
        if planned.refusal is not None:  # shown the plan, then stopped before any write
            raise BudgetExceeded(planned.refusal)  # said once, by the caller: `error: ...`
        outcomes = await engine.execute(runnable)
        if session.halt.error is not None:  # the API refused the provisioner itself: exit 2
            raise session.halt.error
    finally:
        structlog.contextvars.unbind_contextvars("run_id")
    return RunResult(run_id, started, datetime.now(UTC), the_plan, tuple(outcomes))


async def plan_job(job: Job) -> Planned:
    """Load the manifests, connect, and plan what `apply_job` would do. Reads only."""
    manifests = load(job)
    async with open_session(job, manifests) as session:
        return await make_plan(session, prune=job.prune, replace=job.replace)


async def apply_job(
    job: Job,
    *,
    halt: Halt | None = None,
    observer: AbstractContextManager[Observer] | None = None,
) -> RunResult:
    """Load the manifests, connect under the local sinks' locks, and apply (see `apply`).

    The observer is entered once the session is open, so a live display starts only when the
    locks are held; it sees every retry and status of the run, even when the run fails.
    """
    manifests = load(job)
    async with open_session(job, manifests, lock=True, halt=halt) as session:
        with observer or nullcontext(Unobserved()) as seen:
            return await apply(session, prune=job.prune, replace=job.replace, observer=seen)


def _project_keys(session: Session, the_plan: Plan) -> CredentialApi | None:
    """The project keys' API, when the plan has work for it."""
    kind = CredentialKind.PROJECT_KEY
    if any(action.credential_kind is kind for action in the_plan.actions if action.writes):
        return session.client.credential_api(kind)
    return None


def _by_cause(blocked: Mapping[str, SinkError]) -> dict[str, list[str]]:
    """The blocked keys grouped by what blocked them."""
    causes: dict[str, list[str]] = {}
    for key, error in blocked.items():
        causes.setdefault(str(error), []).append(key)
    return causes
