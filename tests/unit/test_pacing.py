"""The pacer's decisions under a fake clock: no real sleeps, no timing of the test itself."""

from __future__ import annotations

import heapq
import math
from collections import deque
from dataclasses import dataclass, field

import pytest

from provisioner.streamkap.pacing import FIRST_SPAN, Pacer, Ticket


class Clock:
    """A clock the test moves; the pacer's sleep moves it too."""

    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


def answer(pacer: Pacer, ticket: Ticket, now: float, *, rejected: bool = False) -> None:
    pacer.record(ticket, rejected=rejected, now=now)


def paced(rate_after_first_cut: float = 10.0) -> Pacer:
    """A pacer that has seen one 429 after `rate_after_first_cut` accepted answers in 1 s."""
    pacer = Pacer()
    tickets = [pacer.take(0.0) for _ in range(int(rate_after_first_cut * FIRST_SPAN) + 1)]
    for ticket in tickets[:-1]:
        answer(pacer, ticket, 0.1)
    answer(pacer, tickets[-1], 0.1, rejected=True)
    return pacer


def test_requests_go_unpaced_until_the_first_429() -> None:
    pacer = Pacer()
    for _ in range(100):
        assert pacer.delay(0.0) == 0.0
        answer(pacer, pacer.take(0.0), 0.05)
    assert pacer.rate is None


def test_the_first_429_starts_a_cautious_pace() -> None:
    """What was accepted is assumed to have come over at least FIRST_SPAN seconds."""
    pacer = paced(rate_after_first_cut=12)
    assert pacer.rate == pytest.approx(12 / FIRST_SPAN)


def test_paced_requests_are_evenly_spaced() -> None:
    pacer = paced(rate_after_first_cut=10)
    pacer.take(1.0)
    assert pacer.delay(1.0) == pytest.approx(0.1)
    assert pacer.delay(1.04) == pytest.approx(0.06)
    assert pacer.delay(1.1) == 0.0


def test_an_unused_slot_is_not_saved_for_later() -> None:
    pacer = paced(rate_after_first_cut=10)
    pacer.take(1.0)
    pacer.take(5.0)  # a quiet spell, then a request
    assert pacer.delay(5.0) == pytest.approx(0.1)


def test_429s_for_requests_sent_before_a_cut_cut_no_further() -> None:
    pacer = Pacer()
    tickets = [pacer.take(0.0) for _ in range(20)]
    for ticket in tickets[:5]:
        answer(pacer, ticket, 0.1)
    for ticket in tickets[5:]:
        answer(pacer, ticket, 0.1, rejected=True)
    assert pacer.rate == pytest.approx(5 / FIRST_SPAN)
    assert pacer.stats().rejected == 15


@pytest.mark.anyio
async def test_acquire_sleeps_until_the_next_slot() -> None:
    clock = Clock()
    pacer = Pacer(clock=clock, sleep=clock.sleep)
    tickets = [await pacer.acquire() for _ in range(11)]
    for ticket in tickets[:10]:
        answer(pacer, ticket, 0.0)
    answer(pacer, tickets[10], 0.0, rejected=True)  # 10 accepted: 10 a second from now on
    first, second = await pacer.acquire(), await pacer.acquire()
    assert clock.waits == [pytest.approx(0.1), pytest.approx(0.1)]
    assert second.sent_at - first.sent_at == pytest.approx(0.1)


def test_slow_start_doubles_the_rate_while_it_binds_and_no_429_comes() -> None:
    pacer = paced(rate_after_first_cut=10)
    now = 0.1
    for _ in range(20):  # 0.2 s of requests at the paced rate, all accepted
        now += pacer.delay(now)
        ticket = pacer.take(now)
        answer(pacer, ticket, now + 0.01)
    assert pacer.rate is not None
    assert pacer.rate >= 20


def test_the_rate_does_not_rise_while_it_holds_nothing_back() -> None:
    pacer = paced(rate_after_first_cut=10)
    for second in range(1, 30):  # one request a second: far below the paced 10/s
        answer(pacer, pacer.take(float(second)), second + 0.01)
    assert pacer.rate == pytest.approx(10)


@dataclass
class TokenBucketApi:
    """Limits its rate as the simulator does: `rate` tokens a second, at most `burst` saved."""

    rate: float
    burst: int
    tokens: float = field(init=False)
    last: float = 0.0

    def __post_init__(self) -> None:
        self.tokens = float(self.burst)

    def take(self, now: float) -> float:
        """0 when accepted, else the seconds until a token (what Retry-After rounds up)."""
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


@dataclass
class Outcome:
    seconds: float
    refused: int
    answers: int
    final_rate: float | None


def provision(api: TokenBucketApi, requests: int, latency: float, connections: int = 40) -> Outcome:
    """Simulate the engine: twice as many workers as connections, each request paced once it
    holds a connection; a 429 frees the connection and waits out its Retry-After."""
    pacer, events, sequence = Pacer(), list[tuple[float, int, str, Ticket | None]](), [0]
    todo, free, waiting = requests, connections, deque[None]()
    refused = answers = 0
    finished = 0.0

    def at(when: float, kind: str, ticket: Ticket | None = None) -> None:
        sequence[0] += 1  # ties go in the order they were scheduled
        heapq.heappush(events, (when, sequence[0], kind, ticket))

    for _ in range(2 * connections):
        at(0.0, "next")
    while events:
        now, _, kind, ticket = heapq.heappop(events)
        if kind == "next" and todo:
            todo -= 1
            at(now, "connect")
        elif kind == "connect" and free:
            free -= 1
            at(now, "send")
        elif kind == "connect":
            waiting.append(None)
        elif kind == "send" and pacer.delay(now) > 0:
            at(now + pacer.delay(now), "send")
        elif kind == "send":
            refused_for = api.take(now)
            at(now + latency, "ok" if refused_for == 0 else f"429 {refused_for}", pacer.take(now))
        elif ticket is not None:  # an answer: the connection is free again
            answers += 1
            pacer.record(ticket, rejected=kind != "ok", now=now)
            if waiting:
                waiting.popleft()
                at(now, "send")
            else:
                free += 1
            if kind == "ok":
                finished = now
                at(now, "next")
            else:
                refused += 1
                at(now + max(1, math.ceil(float(kind.split()[1]))), "connect")
    return Outcome(finished, refused, answers, pacer.rate)


@pytest.mark.parametrize(
    ("rate", "burst", "latency"), [(100, 10, 0.05), (20, 5, 0.1), (200, 20, 0.02), (100, 100, 0.3)]
)
def test_a_rate_limited_api_is_used_near_its_limit_with_few_429s(
    rate: float, burst: int, latency: float
) -> None:
    """Against a token bucket: most of the API's rate is used, and under 8% of answers are 429."""
    outcome = provision(TokenBucketApi(rate, burst), requests=2000, latency=latency)
    ideal = 2000 / rate
    assert outcome.seconds <= 1.2 * ideal
    assert outcome.refused <= 0.08 * outcome.answers
    assert outcome.final_rate is not None  # paced, learnt from the 429s


def test_an_api_without_a_limit_is_never_paced() -> None:
    outcome = provision(TokenBucketApi(rate=1e9, burst=10**9), requests=500, latency=0.1)
    assert outcome.refused == 0
    assert outcome.final_rate is None
    assert outcome.seconds == pytest.approx(math.ceil(500 / 40) * 0.1)  # full waves, no wait
