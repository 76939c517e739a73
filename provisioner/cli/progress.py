"""A live progress display of an apply on a terminal; elsewhere the structured logs say it all."""

from __future__ import annotations

import sys
from collections import Counter
from types import TracebackType
from typing import Any, TextIO

import structlog
from rich.console import Console
from rich.file_proxy import FileProxy
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from provisioner.logs import wants_color
from provisioner.model import Outcome, Plan, Status


class Tracker:
    """Receives a run's plan and each outcome; this base shows nothing (not a terminal)."""

    def on_plan(self, plan: Plan) -> None:
        """Called once, with the plan about to be carried out."""

    def on_outcome(self, outcome: Outcome) -> None:
        """Called as each write action finishes."""

    def __enter__(self) -> Tracker:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None


class _Rate(ProgressColumn):
    """Actions finished per second."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:.1f}/s" if speed else "-/s", style="progress.data.speed")


class LiveProgress(Tracker):
    """done / total, created, replaced, failed, rate and ETA, redrawn on stderr."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._counts: Counter[str] = Counter()
        self._progress = Progress(
            TextColumn("[bold]apply"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[created]} created, {task.fields[replaced]} replaced,"),
            TextColumn("{task.fields[deleted]} deleted, {task.fields[failed]} failed"),
            _Rate(),
            TimeRemainingColumn(),
            console=console,
        )
        self._task: TaskID | None = None
        self._saved_logging: Any = None

    def on_plan(self, plan: Plan) -> None:
        total = sum(1 for action in plan.actions if action.writes)
        self._task = self._progress.add_task("apply", total=total, **self._fields())

    def on_outcome(self, outcome: Outcome) -> None:
        if outcome.status is Status.OK:
            self._counts[_DONE.get(outcome.action.kind.value, "other")] += 1
        else:
            self._counts["failed"] += 1
        if self._task is not None:
            self._progress.update(self._task, advance=1, **self._fields())

    def __enter__(self) -> LiveProgress:
        # While the display owns the terminal, log lines go through it, printed above the bar.
        self._saved_logging = structlog.get_config()["logger_factory"]
        proxy = FileProxy(self.console, self.console.file)
        structlog.configure(logger_factory=structlog.PrintLoggerFactory(proxy))  # type: ignore[arg-type]
        self._progress.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._progress.stop()
        structlog.configure(logger_factory=self._saved_logging)

    def _fields(self) -> dict[str, Any]:
        return {name: self._counts[name] for name in ("created", "replaced", "deleted", "failed")}


_DONE = {"create": "created", "update": "updated", "replace": "replaced", "delete": "deleted"}


def tracker_for(enabled: bool, stream: TextIO | None = None) -> Tracker:
    """A live display when enabled and `stream` (stderr) is a terminal; else a silent tracker."""
    stream = stream or sys.stderr
    if not enabled or not stream.isatty():
        return Tracker()
    # Without colour (NO_COLOR, --no-color), no style at all: rich would still embolden.
    if wants_color(stream):
        return LiveProgress(Console(file=stream))
    return LiveProgress(Console(file=stream, color_system=None))
