"""What one plan or apply works with: the job it was given, and the connections it opens."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import anyio
import httpx
import structlog
from pydantic import SecretStr

from provisioner.config import Settings
from provisioner.errors import SinkError, UsageError
from provisioner.manifest import Manifests
from provisioner.reconcile.observe import check_sinks
from provisioner.runtime import Halt
from provisioner.sinks import Sink, SinkContext, SinkDefinition, open_sink
from provisioner.sinks.locking import hold_locks
from provisioner.streamkap import ApiConfig, Requests, StreamkapClient

if TYPE_CHECKING:
    from provisioner.simulator import SimulatorState, VaultState

log = structlog.get_logger("provisioner.session")

SIMULATOR_URL = "http://simulator.invalid"
#: Where `--simulate` keeps the simulators' state between runs, in the working directory.
SIMULATOR_STATE_FILE = ".provisioner-simulator.json"
SIMULATOR_EXTRA = "pip install 'streamkap-provisioner[simulator]'"


@dataclass(frozen=True)
class Job:
    """What one plan or apply is asked to do."""

    paths: tuple[Path, ...]
    settings: Settings
    cli_sinks: tuple[SinkDefinition, ...] = ()
    sink_flag: str | None = None  # the `--sink` URI as typed, its password scrubbed: to name it
    prune: bool = False
    replace: frozenset[str] = frozenset()  # --replace KEY: replaced now, whatever their state
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
        simulator = import_simulator()
        return cls(simulator.SimulatorState(), simulator.VaultState(mounts=None))  # any mount

    @classmethod
    def resumed(cls, cwd: Path) -> Simulated:
        """The state the last `--simulate` run in `cwd` left, so a re-run follows on from it."""
        simulated, path = cls.fresh(), cwd / SIMULATOR_STATE_FILE
        try:
            import_simulator().load_saved(path, simulated.streamkap, simulated.vault)
        except (OSError, ValueError) as exc:
            raise UsageError(f"{path}: cannot resume the simulator ({exc}); delete it") from None
        return simulated

    def save(self, cwd: Path) -> None:
        """Keep the state for the next `--simulate` run in `cwd`."""
        path = cwd / SIMULATOR_STATE_FILE
        try:
            import_simulator().save_state(path, self.streamkap, self.vault)
        except OSError as exc:  # the demo still ran; only the next one starts afresh
            log.warning("simulator.save_failed", path=str(path), error=exc.strerror)


@dataclass
class Session:
    """The open connections of one run: the API client and the sinks the manifests name."""

    manifests: Manifests
    client: StreamkapClient
    sinks: dict[str, Sink]
    settings: Settings
    halt: Halt  # the run's: set by a signal (its parent), a 403, the breaker, the threshold
    # The sinks that failed their check, and why: their credentials are blocked, in plan and
    # apply alike, and no lock is taken for them.
    failed_checks: Mapping[str, SinkError] = field(default_factory=dict)


@asynccontextmanager
async def open_session(
    job: Job, manifests: Manifests, *, lock: bool = False, halt: Halt | None = None
) -> AsyncIterator[Session]:
    """Connect to the API (or the in-process simulator) and open every sink in use.

    Each sink is checked first, once (`Sink.check`). `lock` is for a run that writes (apply):
    wait for other runs writing to the same local sinks to finish first, locking only the sinks
    that passed their check (no credential is written to the others), and save the simulator's
    state at the end. `halt` is the run's (a child of the process's, which signals set); by
    default one of its own.
    """
    settings, halt = job.settings, halt or Halt()
    started = time.time()
    transport = sink_transport = simulated = None
    if job.simulate:
        simulated = job.simulator or Simulated.resumed(job.cwd)
        transport, sink_transport, settings = _simulator(settings, simulated)
    context = SinkContext(
        cwd=job.cwd,
        environ=_sink_environ(settings),
        transport=sink_transport,
        timeout=settings.timeout,
        max_attempts=settings.max_attempts,
        connections=settings.concurrency,
        simulated=job.simulate,
        owner=manifests.owner,
        halt=halt,
    )
    async with AsyncExitStack() as stack:
        # Last out: whatever an apply made, even if it failed. A plan reads only: it leaves the
        # saved state as it found it.
        if simulated is not None and lock:
            stack.callback(simulated.save, job.cwd)
        client = StreamkapClient(
            Requests(ApiConfig.from_settings(settings), transport=transport, halt=halt)
        )
        stack.push_async_callback(client.aclose)
        used = {name for credential in manifests.credentials for name in credential.sinks}
        sinks: dict[str, Sink] = {}
        for name in sorted(used):
            sinks[name] = open_sink(manifests.sinks[name], context)
            stack.push_async_callback(sinks[name].aclose)
        failed = await check_sinks(sinks, settings.timeout)  # the API's deadline
        if lock:
            writable = {name: sink for name, sink in sinks.items() if name not in failed}
            paths = _lock_paths(writable)
            await stack.enter_async_context(hold_locks(paths, settings.lock_timeout))
            # Under the locks: a temp file older than this run is a killed run's, not a live one's.
            await anyio.to_thread.run_sync(_sweep, writable, started)
        yield Session(manifests, client, sinks, settings, halt, failed)


def _sweep(sinks: Mapping[str, Sink], before: float) -> None:
    """Remove stale temp files (live secrets) a killed run left in local sinks; blocking."""
    for name, sink in sinks.items():
        try:
            removed = sink.sweep(before)
        except OSError as exc:  # the sink's own reads and writes will report what is wrong
            log.warning("sink.temp_sweep_failed", sink=name, error=exc.strerror)
            continue
        if removed:
            log.info("sink.temp_swept", sink=name, removed=removed)


def _lock_paths(sinks: Mapping[str, Sink]) -> list[Path]:
    """Lock files of the sinks that have one (local files; not Vault or standard output)."""
    paths = (sink.lock_path() for sink in sinks.values())
    return [path for path in paths if path is not None]


def import_simulator() -> ModuleType:
    """The simulator package, an optional extra; without it, say how to install it (exit 2)."""
    try:
        import provisioner.simulator as simulator
    except ImportError as exc:
        raise UsageError(
            f"the simulator is not installed ({exc.name} is missing): {SIMULATOR_EXTRA}"
        ) from None
    return simulator


def _simulator(
    settings: Settings, simulated: Simulated
) -> tuple[httpx.AsyncBaseTransport, httpx.AsyncBaseTransport, Settings]:
    """In-process Streamkap and Vault simulators, and the settings that log in to them."""
    simulator = import_simulator()  # only --simulate pays for the import
    update = {
        "host": SIMULATOR_URL,
        "client_id": "sim-admin",
        "secret": SecretStr("sim-admin-secret"),
        "access_token": None,
        # Every Vault sink goes to the stub, whatever its address; it serves any mount.
        "vault_token": SecretStr(simulator.VAULT_ROOT_TOKEN),
        "vault_namespace": None,
        "vault_cacert": None,
        "vault_capath": None,
        "vault_client_cert": None,
        "vault_client_key": None,
        "vault_skip_verify": False,
    }
    return (
        httpx.ASGITransport(app=simulator.create_app(simulated.streamkap)),
        httpx.ASGITransport(app=simulator.create_vault_app(simulated.vault)),
        settings.model_copy(update=update),
    )


def _sink_environ(settings: Settings) -> Mapping[str, str]:
    values: Sequence[tuple[str, str | Path | SecretStr | None]] = [
        ("VAULT_ADDR", settings.vault_addr),
        ("VAULT_TOKEN", settings.vault_token),
        ("VAULT_NAMESPACE", settings.vault_namespace),
        ("VAULT_CACERT", settings.vault_cacert),
        ("VAULT_TOKEN_FILE", settings.vault_token_file),
        ("VAULT_CAPATH", settings.vault_capath),
        ("VAULT_CLIENT_CERT", settings.vault_client_cert),
        ("VAULT_CLIENT_KEY", settings.vault_client_key),
        ("VAULT_SKIP_VERIFY", "true" if settings.vault_skip_verify else None),
    ]
    return {
        name: value.get_secret_value() if isinstance(value, SecretStr) else str(value)
        for name, value in values
        if value is not None
    }
