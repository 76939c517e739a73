"""Durations as manifests and flags write them: `90d`, `12h`, `30m`, `45s`, `2w`."""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"^\s*(\d{1,9})\s*([smhdw])\s*$")
#: The longest duration accepted: longer ones are typos, and past some size adding one to a date
#: overflows, which would fail every later run until the manifest is edited.
MAX_DURATION = timedelta(days=3650)


def parse_duration(text: str) -> timedelta:
    """Parse `<integer><unit>` of at most MAX_DURATION; raise ValueError fit for a user."""
    found = _DURATION.match(text)
    if not found:
        raise ValueError(f"invalid duration {text!r}: expected a number and a unit (s, m, h, d, w)")
    seconds = int(found.group(1)) * _UNITS[found.group(2)]
    # Compared in seconds: timedelta itself overflows past 999,999,999 days.
    if seconds > MAX_DURATION.total_seconds():
        raise ValueError(f"duration {text.strip()!r} is longer than 10 years (3650d)")
    return timedelta(seconds=seconds)


def format_duration(delta: timedelta) -> str:
    """The shortest exact `<n><unit>` spelling of a duration."""
    seconds = int(delta.total_seconds())
    for unit, size in sorted(_UNITS.items(), key=lambda item: -item[1]):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return "0s"
