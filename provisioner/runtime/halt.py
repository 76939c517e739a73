"""One halt: "start no new work", and why. Set by whoever sees the reason first.

Signals set the process's halt; a run's own halt (its child) is set by the failure threshold, a
403, the circuit breaker or an API that never answered. The engine reads it before each action,
and `run` reads it between and during cycles. Work in flight always finishes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio

from provisioner.errors import ProvisionerError


class Halt:
    """Set once (the first reason wins); a child is also set while its parent is."""

    def __init__(self, parent: Halt | None = None) -> None:
        self._parent = parent
        self._reason: str | None = None
        self._error: ProvisionerError | None = None
        self._event: anyio.Event | None = None  # made on first wait: needs a running loop

    def child(self) -> Halt:
        """A halt for one run inside this one: its own reasons stay with the run."""
        return Halt(self)

    def set(self, reason: str, error: ProvisionerError | None = None) -> None:
        """Stop starting work because of `reason`; `error`, if given, ends the run with it."""
        if self._reason is not None:
            return
        self._reason, self._error = reason, error
        if self._event is not None:
            self._event.set()

    def is_set(self) -> bool:
        return self._reason is not None or (self._parent is not None and self._parent.is_set())

    @property
    def reason(self) -> str | None:
        """Why no new work starts (this halt's own reason first), or None."""
        if self._reason is not None:
            return self._reason
        return self._parent.reason if self._parent is not None else None

    @property
    def error(self) -> ProvisionerError | None:
        """The error the run must end with (a refused permission), if a halt carried one."""
        return self._error

    async def wait(self) -> None:
        """Return once this halt (or its parent) is set."""
        if self._reason is not None:
            return
        if self._event is None:
            self._event = anyio.Event()
        if self._parent is None:
            await self._event.wait()
            return
        async with anyio.create_task_group() as group:
            for source in (self._event.wait, self._parent.wait):
                group.start_soon(_then_cancel, source, group.cancel_scope)


async def _then_cancel(wait: Callable[[], Awaitable[None]], scope: anyio.CancelScope) -> None:
    await wait()
    scope.cancel()
