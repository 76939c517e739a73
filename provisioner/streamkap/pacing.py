"""Pacing requests just below the rate an API accepts, learnt from its 429 answers.

Requests go out unpaced until the API first answers 429 (an API without a limit costs nothing).
Then they are spaced evenly, from a cautious rate that doubles while no 429 comes back (slow
start). A 429 then sets the pace just below the rate the API was seen to accept since the last
change (multiplicative decrease), and calm periods raise it by growing steps (additive increase),
so a rate-limited API is used at its limit with few refusals. The rate rises only while it is
what holds requests back. A 429 delays only the request that got it (for its Retry-After); the
others keep their pace.

The decisions are synchronous and take the time as an argument (`delay`, `take`, `record`), so
they are tested with a fake clock; `acquire` is the thin async wrapper the client awaits.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio

#: Share of the measured acceptance rate to pace at after a 429: a little headroom.
BACKOFF = 0.9
#: Answers to gather at a new rate before a 429 may lower it again (one overload, one cut).
MIN_SAMPLES = 8
#: The first cut assumes what was accepted came over at least this long (seconds): cautious.
FIRST_SPAN = 1.0
#: Slow start doubles the rate this often (seconds) until a 429 comes back, but only by
#: NEAR_BOUND_FACTOR past BOUND_SHARE of what the first round trip carried a second.
DOUBLING_INTERVAL = 0.1
BOUND_SHARE = 1.0
NEAR_BOUND_FACTOR = 1.5
#: A 429 ending slow start halves the rate at least: the API's burst allowance hid the overshoot.
SLOW_START_CUT = 0.5
#: Then every PROBE_ANSWERS calm answers (PROBE_INTERVAL to PROBE_MAX_INTERVAL seconds) raise
#: the rate by PROBE_STEP, a step doubled after every calm probe.
PROBE_ANSWERS = 100
PROBE_INTERVAL = 0.25
PROBE_MAX_INTERVAL = 1.0
PROBE_STEP = 0.03
#: The rate binds when requests go out at least this share of it; only then may it rise.
BINDING = 0.75
#: One cut lowers the rate to no less than this share of it (a few answers estimate roughly).
FLOOR = 0.25
#: Never pace slower than this many requests a second.
MIN_RATE = 0.5


@dataclass(frozen=True, slots=True)
class Ticket:
    """When a request was sent, and under which rate (epoch) it was paced."""

    epoch: int
    sent_at: float


@dataclass(frozen=True, slots=True)
class PacerStats:
    """A snapshot: the paced rate (None: not paced yet) and the answers seen."""

    rate: float | None
    accepted: int
    rejected: int


class _Epoch:
    """What happened since the rate last changed."""

    __slots__ = ("accepted", "answers", "last_sent", "number", "rate", "rejected", "sent", "start")

    def __init__(self, number: int, rate: float | None) -> None:
        self.number = number
        self.rate = rate
        self.start: float | None = None  # first send
        self.last_sent = 0.0  # latest send among the answered
        self.sent = self.answers = self.accepted = self.rejected = 0

    def acceptance_rate(self) -> float:
        """Requests accepted a second, counting one more than seen (a few may show none)."""
        span = self.last_sent - (self.start if self.start is not None else self.last_sent)
        return (self.accepted + 1) / max(span, 1e-3)


class Pacer:
    """Spaces requests at a rate learnt from 429s; see the module docstring."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._lock = anyio.Lock()
        self._epoch = _Epoch(0, None)
        self._rates: dict[int, float | None] = {0: None}  # epochs since the last cut
        self._slow_start = True
        self._bound = float("inf")
        self._probes = 0
        self._changed_at = 0.0
        self._last_slot = float("-inf")
        self._accepted = self._rejected = 0

    @property
    def rate(self) -> float | None:
        """Requests a second at most; None until the first 429."""
        return self._epoch.rate

    async def acquire(self) -> Ticket:
        """Wait for this request's turn; pass the ticket to `record` with the answer."""
        if self.rate is None:
            return self.take(self._clock())
        # Waiters queue on the lock, so a new rate applies from the next one on.
        async with self._lock:
            wait = self.delay(self._clock())
            if wait > 0:
                await self._sleep(wait)
            return self.take(self._clock())

    def delay(self, now: float) -> float:
        """Seconds until the next request may go out."""
        rate = self.rate
        return 0.0 if rate is None else max(0.0, self._last_slot + 1.0 / rate - now)

    def take(self, now: float) -> Ticket:
        """Send a request at `now` (once `delay` says 0): its ticket for `record`."""
        # A slot left unused is not saved up: after a quiet spell, requests still go out spaced.
        self._last_slot = now
        epoch = self._epoch
        if epoch.start is None:
            epoch.start = now
        epoch.sent += 1
        return Ticket(epoch.number, now)

    def record(self, ticket: Ticket, *, rejected: bool, now: float) -> None:
        """Learn from one answer: a 429 (`rejected`) or any other status."""
        self._rejected += rejected
        self._accepted += not rejected
        if ticket.epoch not in self._rates:
            return  # sent before the last cut, which already answered it
        current = ticket.epoch == self._epoch.number
        if current:
            self._count(ticket, rejected)
        if not rejected:
            if current:
                self._maybe_raise(now)
            return
        self._epoch.rejected += 1
        # Sent before a raise, a 429 means the raise went too far already; at the current rate,
        # judge from a fair sample of answers (a few may have met a burst left by others).
        if self.rate is None or not current or self._epoch.answers >= MIN_SAMPLES:
            self._cut(ticket, now)

    def stats(self) -> PacerStats:
        return PacerStats(self.rate, self._accepted, self._rejected)

    def _count(self, ticket: Ticket, rejected: bool) -> None:
        epoch = self._epoch
        epoch.answers += 1
        epoch.accepted += not rejected
        epoch.last_sent = max(epoch.last_sent, ticket.sent_at)

    def _cut(self, ticket: Ticket, now: float) -> None:
        """Pace just below the rate the API accepted at, or below the rate of the refused."""
        epoch, paced = self._epoch, self._rates[ticket.epoch]
        if paced is None:
            self._first_cut(ticket, now)
            return
        limit = paced * (SLOW_START_CUT / BACKOFF if self._slow_start else 1.0)
        accepted = epoch.acceptance_rate() if ticket.epoch == epoch.number else paced
        self._slow_start = False
        self._probes = 0
        self._change(max(BACKOFF * min(accepted, limit), FLOOR * paced), now, cut=True)

    def _first_cut(self, ticket: Ticket, now: float) -> None:
        """Unpaced requests may all have gone at once: start cautiously, in slow start."""
        epoch = self._epoch
        span = epoch.last_sent - (epoch.start if epoch.start is not None else now)
        # What one round trip carried bounds the rate from above, loosely (a burst allowance).
        self._bound = epoch.accepted / max(now - ticket.sent_at, 1e-3)
        self._change(epoch.accepted / max(span, FIRST_SPAN), now, cut=True)

    def _maybe_raise(self, now: float) -> None:
        rate = self.rate
        if rate is None or self._epoch.rejected or not self._binding(rate, now):
            return  # not after a 429, nor while the rate holds nothing back
        if self._slow_start and now - self._changed_at >= DOUBLING_INTERVAL:
            factor = 2.0 if rate * 2 <= self._bound * BOUND_SHARE else NEAR_BOUND_FACTOR
            self._change(rate * factor, now, cut=False)
        elif not self._slow_start and self._calm_enough(now):
            step = min(1.0, PROBE_STEP * 2**self._probes)
            self._probes += 1
            self._change(rate * (1 + step), now, cut=False)

    def _calm_enough(self, now: float) -> bool:
        """Whether enough answers came back at this rate, over long enough, to probe higher."""
        elapsed = now - self._changed_at
        enough = self._epoch.answers >= PROBE_ANSWERS or elapsed >= PROBE_MAX_INTERVAL
        return enough and elapsed >= PROBE_INTERVAL

    def _binding(self, rate: float, now: float) -> bool:
        """Whether requests went out at (nearly) the paced rate since it was set."""
        elapsed = now - self._changed_at
        return elapsed > 0 and self._epoch.sent >= BINDING * rate * elapsed

    def _change(self, rate: float, now: float, *, cut: bool) -> None:
        number = self._epoch.number + 1
        self._epoch = _Epoch(number, max(MIN_RATE, rate))
        if cut:
            self._rates.clear()
        self._rates[number] = self._epoch.rate
        self._changed_at = now
