"""Human output on stderr: plain lines on a console, one structlog event per line in JSON mode.

The log level filters diagnostics, not the account of what a run did: that is reported at any
level, except that at `warning` and above a run with nothing to report (no change, no failure)
says nothing, so that cron mails only when there is news.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from typing import Any, TextIO

import structlog

from provisioner.logs import LEVELS, redact, uses_json


@dataclass(frozen=True)
class Voice:
    """How human output is given: as JSON events or plain lines; quiet when nothing happened."""

    json: bool = False
    quiet: bool = False


_voice = Voice()


def configure(level: str = "info", fmt: str = "auto", stream: TextIO | None = None) -> None:
    """Follow the logging settings (called with configure_logging, once per process)."""
    global _voice
    quiet = LEVELS.get(level, logging.INFO) >= logging.WARNING
    _voice = Voice(json=uses_json(fmt, stream or sys.stderr), quiet=quiet)


def reset() -> None:
    """Plain lines, never quiet: how a process starts (tests)."""
    global _voice
    _voice = Voice()


def voice() -> Voice:
    return _voice


def say(text: str, event: str, level: str = "info", **fields: Any) -> None:
    """`text` for people; in JSON mode the event `event` with `fields` and the text as `message`.

    Never filtered by level: whether to say it at all is the caller's decision (see `quiet`).
    """
    if not _voice.json:
        print(redact(text), file=sys.stderr, flush=True)
        return
    # Whatever the configured level: the events that stand for human lines always pass.
    events = structlog.wrap_logger(None, wrapper_class=structlog.make_filtering_bound_logger(0))
    getattr(events, level)(event, **fields, message=text)
