"""Durations as manifests and flags write them: `90d`, `12h`, `30m`, `45s`, `2w`."""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"^\s*(\d{1,9})\s*([smhdw])\s*$")


def parse_duration(text: str) -> timedelta:
    """Parse `<integer><unit>`; raise ValueError with a message fit for a user."""
    found = _DURATION.match(text)
    if not found:
        raise ValueError(f"invalid duration {text!r}: expected a number and a unit (s, m, h, d, w)")
    return timedelta(seconds=int(found.group(1)) * _UNITS[found.group(2)])


def format_duration(delta: timedelta) -> str:
    """The shortest exact `<n><unit>` spelling of a duration."""
    seconds = int(delta.total_seconds())
    for unit, size in sorted(_UNITS.items(), key=lambda item: -item[1]):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return "0s"
