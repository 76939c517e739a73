"""Awaiting two calls at once: results in order, and a failure raised as itself."""

from __future__ import annotations

import anyio
import pytest

from provisioner.errors import ApiError
from provisioner.gather import both


@pytest.mark.anyio
async def test_both_results_come_back_in_order() -> None:
    async def value(x: int) -> int:
        await anyio.lowlevel.checkpoint()
        return x

    assert await both(value(1), value(2)) == (1, 2)


@pytest.mark.anyio
async def test_a_failure_is_raised_plainly_and_the_other_call_cancelled() -> None:
    never = anyio.Event()
    cancelled: list[bool] = []

    async def waits_forever() -> None:
        try:
            await never.wait()
        except anyio.get_cancelled_exc_class():
            cancelled.append(True)
            raise

    async def fails() -> None:
        await anyio.lowlevel.checkpoint()
        raise ApiError("GET", "/auth/roles", 503)

    with pytest.raises(ApiError):
        await both(waits_forever(), fails())
    assert cancelled == [True]
