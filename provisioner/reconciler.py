"""The `run` command: apply on a cadence until SIGTERM/SIGINT, finishing the cycle in flight.

Only configuration errors of the first cycle end the loop (exit 2). Later, invalid manifests skip
their cycle (nothing is written, so nothing of the last good state is pruned) and a failing cycle
is logged; the next cycle tries again.
"""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from typing import Any

import anyio
import structlog

from provisioner import jobs, metrics
from provisioner.errors import AuthError, ManifestError, UsageError
from provisioner.report import summarize
from provisioner.runs import Outputs, apply_once, finish, single_error
from provisioner.schedule import Cadence, run_every

log = structlog.get_logger("provisioner.reconciler")

#: Errors that mean "fix the configuration": fatal on the first cycle, skipped later.
CONFIG_ERRORS = (ManifestError, UsageError, AuthError)
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@dataclass
class Reconciler:
    """One `run`: the job re-read each cycle, where results go, and the process's metrics."""

    job: jobs.Job
    outputs: Outputs
    recorder: metrics.Metrics = field(default_factory=metrics.Metrics)
    cycles: int = 0  # started so far

    async def cycle(self, number: int) -> None:
        """Apply once; a failure is logged, except configuration errors on the first cycle."""
        self.cycles = number
        log.info("cycle.started", cycle=number)
        try:
            result = await apply_once(self.job, self.outputs, self.recorder)
        except Exception as exc:
            error = single_error(exc)
            if number == 1 and isinstance(error, CONFIG_ERRORS):
                raise error from None
            _log_failure(number, error)
            return
        finish(result, self.outputs)
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


@dataclass
class _Stop:
    event: anyio.Event = field(default_factory=anyio.Event)
    aborted: bool = False


async def reconcile(reconciler: Reconciler, cadence: Cadence) -> int:
    """Run until the first SIGTERM/SIGINT has let the cycle in flight finish; 0, or 1 if aborted.

    A second signal cancels the cycle in flight (what a re-run repairs, as after SIGKILL).
    """
    stop = _Stop()
    log.info("run.started", every=cadence.every, jitter=cadence.jitter)
    async with anyio.create_task_group() as group:
        with anyio.open_signal_receiver(*STOP_SIGNALS) as signals:
            group.start_soon(_watch, signals, stop, group.cancel_scope)
            await run_every(reconciler.cycle, cadence, stop.event)
            group.cancel_scope.cancel()
    log.info("run.stopped", cycles=reconciler.cycles, aborted=stop.aborted)
    return 1 if stop.aborted else 0


async def _watch(signals: AsyncIterator[Any], stop: _Stop, scope: anyio.CancelScope) -> None:
    async for signum in signals:
        name = signal.Signals(signum).name
        if stop.event.is_set():
            log.warning("run.aborted", signal=name)
            stop.aborted = True
            scope.cancel()
            return
        log.info("run.stopping", signal=name, detail="finishing the cycle in flight")
        stop.event.set()
