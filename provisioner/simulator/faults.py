"""Fault injection for the simulator: the configuration and the per-call decisions it implies."""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, NamedTuple

import httpx
from pydantic import BaseModel, ConfigDict, Field

#: ASGI scope extension a server may install to really drop a connection (see `serve.py`).
DROP_EXTENSION = "provisioner.simulator.drop_connection"

AfterCreate = Literal["drop", "error"] | None

#: A create answer that is 201 but wrong (the credential is committed all the same):
#: the secret missing, null, "", a number or masked; the body cut mid-JSON; no `client_id`;
#: the description cut to its first half (an ownership marker at its end is lost); a default
#: role added to the roles asked for. The last two change the stored credential too.
BadCreateAnswer = Literal[
    "secret_missing",
    "secret_null",
    "secret_empty",
    "secret_not_string",
    "secret_masked",
    "truncated_json",
    "client_id_missing",
    "description_cut",
    "extra_role",
]
#: A 200 listing that is wrong: every item listed twice (a client_id repeated), an object
#: instead of a list, items without `client_id` and `roles`, or the body cut mid-JSON.
BadListAnswer = Literal["duplicate_entries", "not_a_list", "missing_fields", "truncated_json"]
#: A 200 `GET /auth/roles` that is wrong: an object, roles without `id`, or cut mid-JSON.
BadRolesAnswer = Literal["not_a_list", "missing_fields", "truncated_json"]
#: A 200 token answer (login and refresh) that is wrong. The `expires_in_*` ones still issue a
#: working token (for `token_ttl` seconds); only the advertised lifetime is missing, 0 or < 0.
BadTokenAnswer = Literal[
    "not_an_object",
    "access_token_missing",
    "truncated_json",
    "expires_in_missing",
    "expires_in_zero",
    "expires_in_negative",
]


class SimulatedConnectionDrop(httpx.RemoteProtocolError):
    """Raised out of the ASGI app when a connection is dropped in-process (httpx.ASGITransport).

    It subclasses `httpx.RemoteProtocolError`, the error httpx raises when a real server closes
    the socket without answering, so clients treat both alike (as an `httpx.TransportError`).
    """


class FaultConfig(BaseModel):
    """What goes wrong, and how often; immutable, swap the whole object to change it at runtime."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    latency: float = Field(default=0.0, ge=0, description="seconds added to every call")
    error_rate: float = Field(default=0.0, ge=0, le=1, description="share of calls answering 503")
    rate_limit: float | None = Field(default=None, gt=0, description="requests per second")
    burst: int | None = Field(default=None, ge=1, description="bucket size; default ceil(rate)")
    drop_after_create_rate: float = Field(default=0.0, ge=0, le=1)
    error_after_create_rate: float = Field(default=0.0, ge=0, le=1)
    token_ttl: int = Field(default=3600, ge=1, description="access token lifetime, seconds")
    fail_all: bool = Field(default=False, description="every call answers 503 (API down)")
    include_token_calls: bool = Field(
        default=False, description="apply error_rate, fail_all and rate_limit to token calls too"
    )
    seed: int | None = Field(default=0, description="seed of the fault dice; None: unseeded")
    bad_create_answer: BadCreateAnswer | None = Field(
        default=None, description="answer committed creates with this defect (see BadCreateAnswer)"
    )
    bad_create_answer_rate: float = Field(
        default=1.0, ge=0, le=1, description="share of creates given the bad answer"
    )
    bad_create_answer_count: int | None = Field(
        default=None,
        ge=0,
        description="at most this many bad create answers (counted since the faults were set)",
    )
    bad_list_answer: BadListAnswer | None = Field(
        default=None, description="every credentials listing has this defect"
    )
    bad_roles_answer: BadRolesAnswer | None = Field(
        default=None, description="every roles listing has this defect"
    )
    bad_token_answer: BadTokenAnswer | None = Field(
        default=None, description="every successful token answer has this defect"
    )
    slow_activation: Annotated[float, Field(ge=0)] | Literal["never"] | None = Field(
        default=None,
        description="seconds a project key asking for Kafka access stays `creating` (instead of "
        "the state's activation delay); 'never': it stays `creating`",
    )
    project_key_delete_failed_rate: float = Field(
        default=0.0, ge=0, le=1, description="share of project key deletions ending delete_failed"
    )


@dataclass(frozen=True)
class Refusal:
    """An answer given instead of doing the call."""

    status: int
    detail: str
    headers: dict[str, str] = field(default_factory=dict)


SERVICE_UNAVAILABLE = Refusal(503, "Service Unavailable")


class TokenBucket:
    """Token bucket over an injected clock: `rate` tokens a second, at most `burst` saved up."""

    def __init__(self, rate: float, burst: int, now: datetime) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._last = now

    def take(self, now: datetime) -> float:
        """Take one token; return 0 on success, else the seconds until one is available."""
        elapsed = max(0.0, (now - self._last).total_seconds())
        self._tokens = min(float(self.burst), self._tokens + elapsed * self.rate)
        self._last = max(now, self._last)
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        return (1 - self._tokens) / self.rate


class FaultDecider:
    """Rolls the dice for one `FaultConfig`; not thread-safe, the state calls it under its lock."""

    def __init__(self, config: FaultConfig, now: datetime) -> None:
        self.config = config
        self._random = random.Random(config.seed)
        self._bucket: TokenBucket | None = None
        self._bad_creates = 0
        if config.rate_limit is not None:
            burst = config.burst or max(1, math.ceil(config.rate_limit))
            self._bucket = TokenBucket(config.rate_limit, burst, now)

    def _hit(self, rate: float) -> bool:
        # Rates 0 and 1 consume no randomness, so they never shift a seeded sequence.
        return rate > 0 and (rate >= 1 or self._random.random() < rate)

    def before_call(self, now: datetime, *, token_call: bool) -> Refusal | None:
        """Decide whether a call is refused (503, 429) before it does anything."""
        config = self.config
        if token_call and not config.include_token_calls:
            return None
        if config.fail_all or self._hit(config.error_rate):
            return SERVICE_UNAVAILABLE
        if self._bucket is not None:
            wait = self._bucket.take(now)
            if wait > 0:
                retry_after = str(max(1, math.ceil(wait)))
                return Refusal(429, "Too Many Requests", {"Retry-After": retry_after})
        return None

    def after_create(self) -> AfterCreate:
        """Decide how a committed create answers: normally (None), not at all, or with a 500."""
        if self._hit(self.config.drop_after_create_rate):
            return "drop"
        if self._hit(self.config.error_after_create_rate):
            return "error"
        return None

    def project_key_delete_fails(self) -> bool:
        """Decide whether a project key's deletion ends `delete_failed`."""
        return self._hit(self.config.project_key_delete_failed_rate)

    def bad_create(self) -> BadCreateAnswer | None:
        """Decide whether the next create gets the configured bad answer (counted)."""
        config = self.config
        if config.bad_create_answer is None:
            return None
        limit = config.bad_create_answer_count
        if limit is not None and self._bad_creates >= limit:
            return None
        if not self._hit(config.bad_create_answer_rate):
            return None
        self._bad_creates += 1
        return config.bad_create_answer


class Call(NamedTuple):
    """One entry of the call log; `status` is `NO_RESPONSE` (0) when the connection was dropped."""

    method: str
    path: str
    status: int


class ServiceState:
    """What both fakes share: an injected clock, a lock, the fault dice, and the call log."""

    def __init__(self, clock: Callable[[], datetime], faults: FaultConfig | None) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._decider = FaultDecider(faults or FaultConfig(), self.now())
        self._calls: list[Call] = []

    def record_call(self, method: str, path: str, status: int) -> None:
        """Append one answered (or dropped) call to the log."""
        with self._lock:
            self._calls.append(Call(method, path, status))

    def calls(self, method: str | None = None, path_prefix: str | None = None) -> list[Call]:
        """The logged calls, optionally only one method and/or paths starting with a prefix."""
        with self._lock:
            logged = list(self._calls)
        return [
            call
            for call in logged
            if (method is None or call.method == method.upper())
            and (path_prefix is None or call.path.startswith(path_prefix))
        ]

    def reset_calls(self) -> None:
        with self._lock:
            self._calls.clear()

    def now(self) -> datetime:
        """The injected clock's time, as an aware UTC datetime (naive times are taken as UTC)."""
        moment = self._clock()
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)

    @property
    def faults(self) -> FaultConfig:
        """The fault configuration in force."""
        return self._decider.config

    @faults.setter
    def faults(self, config: FaultConfig) -> None:
        # A new decider re-seeds the dice and refills the rate-limit bucket.
        decider = FaultDecider(config, self.now())
        with self._lock:
            self._decider = decider

    def update_faults(self, **changes: Any) -> FaultConfig:
        """Replace some fault options (validated), keep the others; returns the new config."""
        self.faults = FaultConfig.model_validate({**self.faults.model_dump(), **changes})
        return self.faults
