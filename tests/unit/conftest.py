"""Fixtures of the unit tests: a manual clock, and the in-process simulator with a client on it.

A module that speaks to the simulator over plain HTTP, on the manual clock, overrides `state` and
`client`; `auth` is the header it sends."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from provisioner.simulator import ManualClock, SimulatorState
from provisioner.streamkap.client import StreamkapClient
from tests.support.factories import no_sleep, sim_client


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def state() -> SimulatorState:
    """The simulated account on the real clock; a module that moves time overrides this."""
    return SimulatorState()


@pytest.fixture
def auth(state: SimulatorState) -> dict[str, str]:
    """The header of a request by the account's admin, with a token `state` issued."""
    return {"Authorization": f"Bearer {state.issue_token()['accessToken']}"}


@pytest.fixture
def max_attempts() -> int:
    """How often `client` tries a call; a module whose assertions count attempts overrides it."""
    return 3


@pytest.fixture
async def client(state: SimulatorState, max_attempts: int) -> AsyncIterator[StreamkapClient]:
    """An API client logged in to the in-process simulator; its retries never wait."""
    async with sim_client(state, sleep=no_sleep, max_attempts=max_attempts) as api:
        yield api
