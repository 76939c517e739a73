"""ASGI middleware that appends every HTTP call, faulted ones included, to a simulator's log."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from provisioner.simulator.faults import SimulatedConnectionDrop
from provisioner.simulator.state import NO_RESPONSE

# Given the Starlette app of the call, the method, the path and the status; NO_RESPONSE (0) when
# the connection was dropped without an answer.
Recorder = Callable[[Any, str, str, int], None]


class CallLog:
    """Wrap an app so that `record` sees each call's method, path and final status."""

    def __init__(self, app: ASGIApp, record: Recorder) -> None:
        self.app = app
        self.record = record

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = NO_RESPONSE

        async def logging_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, logging_send)
        except Exception as exc:
            # Starlette answers an unexpected error with a 500; a simulated drop answers nothing.
            if status == NO_RESPONSE and not isinstance(exc, SimulatedConnectionDrop):
                status = 500
            raise
        finally:
            self.record(scope["app"], scope["method"], scope["path"], status)
