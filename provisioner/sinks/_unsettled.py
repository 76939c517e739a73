"""What a key held before a write that failed, for the retry that follows it.

A write can land and still report failure (the directory's fsync failed after the rename, the
answer was lost). The retry then finds the sink already holding the new record, so what it
replaced is what the failed attempt saw, not what the retry sees.
"""

from __future__ import annotations

from provisioner.sinks.base import Previous


class Unsettled:
    """Per key, the `Previous` of the first failed write not yet followed by a success."""

    def __init__(self) -> None:
        self._before: dict[str, Previous] = {}

    def failed(self, key: str, previous: Previous | None) -> None:
        """A write of `key` failed after seeing `previous` (None: it saw nothing at all)."""
        if previous is not None:
            self._before.setdefault(key, previous)

    def settled(self, key: str, client_id: str, previous: Previous) -> Previous:
        """What a successful write of `client_id` replaced, given what it saw (`previous`)."""
        before = self._before.pop(key, None)
        if before is not None and previous.client_id == client_id:
            return before  # the failed attempt had landed: it saw the real previous record
        return previous
