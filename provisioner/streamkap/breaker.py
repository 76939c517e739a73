"""A circuit breaker over API calls: when everything fails, fail fast instead of backing off.

Without it, an API that is down costs every credential its full retry budget (minutes of
backoff each). Rate limiting (429) proves the API is alive, so it never counts as a failure.
"""

from __future__ import annotations

from provisioner.errors import ApiError, CircuitOpen

THRESHOLD = 20


class CircuitBreaker:
    """Opens after `threshold` failed calls in a row; a run's breaker then stays open."""

    def __init__(self, threshold: int = THRESHOLD) -> None:
        self.threshold = threshold
        self._in_row = 0
        self._open: CircuitOpen | None = None

    @property
    def is_open(self) -> bool:
        return self._open is not None

    @property
    def opened(self) -> CircuitOpen | None:
        """Why the breaker opened, once it has."""
        return self._open

    def check(self) -> None:
        """Raise CircuitOpen, before a call is made, once the breaker has opened."""
        if self._open is not None:
            raise self._open

    def succeeded(self) -> None:
        self._in_row = 0

    def failed(self, error: Exception) -> None:
        """Count a failed call (after which a retry would be tried); 429s do not count."""
        if isinstance(error, ApiError) and error.status == 429:
            return
        self._in_row += 1
        if self._in_row >= self.threshold and self._open is None:
            self._open = CircuitOpen(f"{self._in_row} API calls in a row failed; last: {error}")
