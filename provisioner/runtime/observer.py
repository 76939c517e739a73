"""One observer for everything a run reports: the plan, each outcome, each retry, each status.

The CLI passes one observer to a run; the pipeline binds it for the run's tasks, so the request
path and every retry loop report to it without being handed it (as structlog binds context).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from provisioner.model import Outcome, Plan


class Observer(Protocol):
    """Sees a run as it goes: the plan before any write, then outcomes, retries and statuses."""

    def on_plan(self, plan: Plan) -> None: ...

    def on_outcome(self, outcome: Outcome) -> None: ...

    def on_retry(self, call: str) -> None: ...

    def on_status(self, status: int) -> None: ...


class Unobserved:
    """Sees nothing; a base for observers that care about only some of what a run reports."""

    def on_plan(self, plan: Plan) -> None:
        return None

    def on_outcome(self, outcome: Outcome) -> None:
        return None

    def on_retry(self, call: str) -> None:
        return None

    def on_status(self, status: int) -> None:
        return None


_current: ContextVar[Observer | None] = ContextVar("observer", default=None)
_NOBODY = Unobserved()


def current_observer() -> Observer:
    """The observer of the run this task belongs to (one that sees nothing outside a run)."""
    return _current.get() or _NOBODY


@contextmanager
def observing(observer: Observer) -> Iterator[Observer]:
    """Within the block (and the tasks it starts), `current_observer()` is `observer`."""
    token = _current.set(observer)
    try:
        yield observer
    finally:
        _current.reset(token)
