"""The stages wired together: load -> resolve -> observe -> plan -> execute -> report."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import httpx
import structlog
from pydantic import SecretStr

from provisioner.engine import Engine, Outcome, Status
from provisioner.errors import SinkError
from provisioner.gather import both
from provisioner.gcpause import gc_paused
from provisioner.locking import hold_locks
from provisioner.manifest import Manifests, load_manifests
from provisioner.observe import read_holdings
from provisioner.plan import Action, Plan, plan
from provisioner.roles import resolve_roles
from provisioner.settings import Settings
from provisioner.sinks import Sink, SinkContext, SinkDefinition, open_sink
from provisioner.streamkap import StreamkapClient

if TYPE_CHECKING:
    from provisioner.simulator import SimulatorState, VaultState

log = structlog.get_logger("provisioner.jobs")

SIMULATOR_URL = "http://simulator.invalid"


@dataclass(frozen=True)
class Job:
    """What one plan or apply is asked to do."""

    paths: tuple[Path, ...]
    settings: Settings
    cli_sinks: tuple[SinkDefinition, ...] = ()
    prune: bool = False
    simulate: bool = False
    cwd: Path = field(default_factory=Path.cwd)
    # With simulate: the simulators' state, shared by every session of a `run` so cycles converge.
    simulator: Simulated | None = None


@dataclass(frozen=True)
class Simulated:
    """The in-process Streamkap API and Vault that `--simulate` talks to."""

    streamkap: SimulatorState
    vault: VaultState

    @classmethod
    def fresh(cls) -> Simulated:
        from provisioner.simulator import SimulatorState, VaultState

        return cls(SimulatorState(), VaultState(mounts=None))  # the stub serves any mount


@dataclass(frozen=True)
class RunResult:
    run_id: str
    started_at: datetime
    finished_at: datetime
    plan: Plan
    outcomes: tuple[Outcome, ...]

    @property
    def failed(self) -> bool:
        return any(outcome.status != "ok" for outcome in self.outcomes)


@dataclass
class Session:
    """The open connections of one run: the API client and the sinks the manifests name."""

    manifests: Manifests
    client: StreamkapClient
    sinks: dict[str, Sink]
    settings: Settings


def load(job: Job) -> Manifests:
    """Validate the manifests; no network."""
    return load_manifests(job.paths, job.cli_sinks)


@asynccontextmanager
async def open_session(
    job: Job, manifests: Manifests, *, lock: bool = False
) -> AsyncIterator[Session]:
    """Connect to the API (or the in-process simulator) and open every sink in use.

    With `lock`, wait for other runs writing to the same local sinks to finish first.
    """
    settings = job.settings
    started = time.time()
    transport = sink_transport = None
    if job.simulate:
        transport, sink_transport, settings = _simulator(settings, job.simulator)
    context = SinkContext(
        cwd=job.cwd,
        environ=_sink_environ(settings),
        transport=sink_transport,
        timeout=settings.timeout,
        max_attempts=settings.max_attempts,
    )
    async with AsyncExitStack() as stack:
        client = StreamkapClient(
            settings.host,
            client_id=settings.client_id,
            secret=settings.secret,
            access_token=settings.access_token,
            concurrency=settings.concurrency,
            max_attempts=settings.max_attempts,
            timeout=settings.timeout,
            transport=transport,
        )
        stack.push_async_callback(client.aclose)
        used = {name for credential in manifests.credentials for name in credential.sinks}
        sinks: dict[str, Sink] = {}
        for name in sorted(used):
            sinks[name] = open_sink(manifests.sinks[name], context)
            stack.push_async_callback(sinks[name].aclose)
        if lock:
            await stack.enter_async_context(hold_locks(_lock_paths(sinks), settings.lock_timeout))
            # Under the locks: a temp file older than this run is a killed run's, not a live one's.
            await anyio.to_thread.run_sync(_sweep, sinks, started)
        yield Session(manifests, client, sinks, settings)


def _sweep(sinks: Mapping[str, Sink], before: float) -> None:
    """Remove stale temp files (live secrets) a killed run left in local sinks; blocking."""
    for name, sink in sinks.items():
        sweep = getattr(sink, "sweep", None)
        if sweep is None:
            continue
        try:
            removed = sweep(before)
        except OSError as exc:  # the sink's own reads and writes will report what is wrong
            log.warning("sink.temp_sweep_failed", sink=name, error=exc.strerror)
            continue
        if removed:
            log.info("sink.temp_swept", sink=name, removed=removed)


def _lock_paths(sinks: Mapping[str, Sink]) -> list[Path]:
    """Lock files of the sinks that have one (local files; not Vault or standard output)."""
    paths = (getattr(sink, "lock_path", lambda: None)() for sink in sinks.values())
    return [path for path in paths if path is not None]


@dataclass(frozen=True)
class Planned:
    """A plan, and the credentials that cannot be reconciled this run (a sink was unreadable)."""

    plan: Plan
    blocked: Mapping[str, SinkError]


async def make_plan(session: Session, *, prune: bool) -> Planned:
    """Resolve roles, observe the remote and the sinks, and plan. Reads only."""
    client, wanted = session.client, session.manifests.credentials
    # The listing, holdings and plan are acyclic: collecting between the steps only walks them.
    with gc_paused():
        # Independent reads, done at once: each is a round trip (or many file reads) of waiting.
        (roles, remote), (holdings, blocked) = await both(
            both(client.list_roles(), client.list_credentials()),
            read_holdings(wanted, session.sinks, session.settings.concurrency),
        )
        desired = resolve_roles(session.manifests, roles)
        result = plan(desired, remote, holdings, now=datetime.now(UTC), prune=prune)
    counts = {str(kind): count for kind, count in result.counts.items()}
    log.info("plan.ready", actions=len(result.actions), **counts)
    for key, error in blocked.items():
        log.error("sink.unreadable", key=key, sink=error.sink, error=str(error))
    return Planned(result, blocked)


async def apply(
    session: Session,
    *,
    prune: bool,
    on_outcome: Callable[[Outcome], None] | None = None,
    engine_hook: Callable[[Engine], None] | None = None,
    on_plan: Callable[[Plan], None] | None = None,
) -> RunResult:
    """Plan, then carry out every change; `on_plan` sees the runnable plan before any write."""
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
            on_outcome=on_outcome,
        )
        if engine_hook is not None:
            engine_hook(engine)
        runnable = [action for action in the_plan.actions if action.key not in blocked]
        if on_plan is not None:
            on_plan(Plan(tuple(runnable)))
        outcomes = await engine.execute(runnable)
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


def _simulator(
    settings: Settings, simulated: Simulated | None
) -> tuple[httpx.AsyncBaseTransport, httpx.AsyncBaseTransport, Settings]:
    """In-process Streamkap and Vault simulators, and the settings that log in to them."""
    # Only --simulate pays for the import.
    from provisioner.simulator import VAULT_ROOT_TOKEN, create_app, create_vault_app

    simulated = simulated or Simulated.fresh()
    update = {
        "host": SIMULATOR_URL,
        "client_id": "sim-admin",
        "secret": SecretStr("sim-admin-secret"),
        "access_token": None,
        # Every Vault sink goes to the stub, whatever its address; it serves any mount.
        "vault_token": SecretStr(VAULT_ROOT_TOKEN),
        "vault_namespace": None,
        "vault_cacert": None,
    }
    return (
        httpx.ASGITransport(app=create_app(simulated.streamkap)),
        httpx.ASGITransport(app=create_vault_app(simulated.vault)),
        settings.model_copy(update=update),
    )


def _sink_environ(settings: Settings) -> Mapping[str, str]:
    values: Sequence[tuple[str, str | Path | SecretStr | None]] = [
        ("VAULT_ADDR", settings.vault_addr),
        ("VAULT_TOKEN", settings.vault_token),
        ("VAULT_NAMESPACE", settings.vault_namespace),
        ("VAULT_CACERT", settings.vault_cacert),
        ("VAULT_TOKEN_FILE", settings.vault_token_file),
    ]
    return {
        name: value.get_secret_value() if isinstance(value, SecretStr) else str(value)
        for name, value in values
        if value is not None
    }
