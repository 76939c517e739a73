"""Durations as manifests and flags write them: `90d`, `12h`, `30m`, `45s`, `2w`."""

from __future__ import annotations

import re
from datetime import timedelta

UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}  # largest first
#: `<integer><unit>`, blanks allowed around; the manifest schema uses the same pattern.
PATTERN = r"^\s*\d{1,9}\s*[smhdw]\s*$"
_DURATION = re.compile(r"^\s*(\d{1,9})\s*([smhdw])\s*$")
#: The longest duration accepted: longer ones are typos, and past some size adding one to a date
#: overflows, which would fail every later run until the manifest is edited.
MAX_DURATION = timedelta(days=3650)


def parse_duration(text: str) -> timedelta:
    """Parse `<integer><unit>` of at most MAX_DURATION; raise ValueError fit for a user."""
    found = _DURATION.match(text)
    if not found:
        raise ValueError(f"invalid duration {text!r}: expected a number and a unit (s, m, h, d, w)")
    seconds = int(found.group(1)) * UNITS[found.group(2)]
    # Compared in seconds: timedelta itself overflows past 999,999,999 days.
    if seconds > MAX_DURATION.total_seconds():
        raise ValueError(f"duration {text.strip()!r} is longer than 10 years (3650d)")
    return timedelta(seconds=seconds)


def format_duration(delta: timedelta) -> str:
    """The largest unit that spells `delta` exactly (`90m`, `36h`); else its largest whole unit.

    Durations from manifests are always spelt exactly; only ages (`100d old`) are rounded down.
    """
    seconds = int(delta.total_seconds())
    if seconds <= 0:
        return "0s"
    exact = next(unit for unit, size in UNITS.items() if seconds % size == 0)
    if exact != "s" or seconds < 60:
        return f"{seconds // UNITS[exact]}{exact}"
    whole = next(unit for unit, size in UNITS.items() if unit != "w" and seconds >= size)
    return f"{seconds // UNITS[whole]}{whole}"
