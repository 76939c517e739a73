"""Human output on stderr: plain lines on a console, one structlog event per line in JSON mode.

`cli.main` chooses the view once and passes it down; no other module asks which one it has.
The log level filters diagnostics, not the account of what a run did: that is reported at any
level, except that at `warning` and above (`quiet`) a run with nothing to report (no change, no
failure) says nothing, so that cron mails only when there is news. Whether to say it at all is
the caller's decision; a view only decides how.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from provisioner.cli.render import (
    action_json,
    blocked_causes,
    blocked_line,
    change_lines,
    describe,
    plan_json,
    plan_summary_line,
    render_plan,
)
from provisioner.logs import redact, wants_color
from provisioner.model import Kind, Plan, Reason

if TYPE_CHECKING:  # the live display (rich) is imported by the commands that apply, when they do
    from provisioner.cli.progress import Tracker


class View(Protocol):
    """How the account of a command reaches people: its form, never whether to give it."""

    @property
    def quiet(self) -> bool:
        """At `warning` and above: a command with no news says nothing."""
        ...

    def say(self, text: str, event: str = "message", level: str = "info", **fields: Any) -> None:
        """`text` for people; as JSON, the event `event` with `fields` and the text as `message`."""

    def plan(self, plan: Plan) -> None:
        """What `plan` shows: the changes, what could not be planned, the summary line."""

    def changes(self, plan: Plan) -> None:
        """What `apply` shows before any write: the changes and what could not be planned."""

    def problems(self, problems: Sequence[str], count: str) -> None:
        """Invalid manifests: each problem, then `count` (the line that counts them)."""

    def tracker(self, enabled: bool) -> Tracker:
        """What follows an apply's outcomes as they come (a live display, where there is one)."""


def has_news(plan: Plan) -> bool:
    """A change, or a credential that could not be planned: what even a quiet view reports."""
    return plan.has_changes or bool(plan.count(Kind.BLOCKED))


@dataclass(frozen=True)
class HumanView:
    """Plain lines on stderr, coloured on a terminal; secrets redacted."""

    quiet: bool = False

    def say(self, text: str, event: str = "message", level: str = "info", **fields: Any) -> None:
        print(redact(text), file=sys.stderr, flush=True)

    def plan(self, plan: Plan) -> None:
        self.say(render_plan(plan, color=wants_color(sys.stderr)))

    def changes(self, plan: Plan) -> None:
        lines = change_lines(plan, color=wants_color(sys.stderr))
        if lines:
            self.say("\n".join(lines), "plan.changes")

    def problems(self, problems: Sequence[str], count: str) -> None:
        for line in problems:
            self.say(line)
        self.say(count)

    def tracker(self, enabled: bool) -> Tracker:
        from provisioner.cli.progress import tracker_for

        return tracker_for(enabled)


@dataclass(frozen=True)
class JsonView:
    """One structlog event per line on stderr; no live display (JSON lines only)."""

    quiet: bool = False

    def say(self, text: str, event: str = "message", level: str = "info", **fields: Any) -> None:
        # Whatever the configured level: the events that stand for human lines always pass.
        events = structlog.wrap_logger(None, wrapper_class=structlog.make_filtering_bound_logger(0))
        getattr(events, level)(event, **fields, message=text)

    def plan(self, plan: Plan) -> None:
        self.changes(plan)
        summary = plan_json(plan)["summary"]
        self.say(plan_summary_line(plan), "plan.summary", changes=plan.has_changes, **summary)

    def changes(self, plan: Plan) -> None:
        for action in plan.actions:
            if action.reason is not Reason.UP_TO_DATE and action.kind is not Kind.BLOCKED:
                self.say(describe(action), "plan.change", **action_json(action))
        for cause, keys in blocked_causes(plan).items():  # once per cause, not per credential
            text = blocked_line(cause, keys)
            self.say(text, "plan.blocked", "warning", error=cause, credentials=len(keys), keys=keys)

    def problems(self, problems: Sequence[str], count: str) -> None:
        self.say(count, "manifests.invalid", "error", problems=problems)

    def tracker(self, enabled: bool) -> Tracker:
        from provisioner.cli.progress import Tracker

        return Tracker()
