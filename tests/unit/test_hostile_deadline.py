"""Point 3 of issue 14: a request's timeout covers its whole answer, not each read."""

from __future__ import annotations

import time

import anyio
import pytest
from pydantic import SecretStr

from provisioner.errors import RequestFailed
from provisioner.streamkap import ApiConfig, Requests, StreamkapClient
from tests.support.factories import no_sleep
from tests.support.hostile import drip, hostile_server


@pytest.mark.anyio
async def test_an_answer_dripping_one_byte_at_a_time_fails_at_the_deadline() -> None:
    body = b"[" + b" " * 2000 + b"]"  # 100 s at one byte per 50 ms
    with hostile_server(drip(body, interval=0.05)) as server:
        config = ApiConfig(server.url, access_token=SecretStr("t"), timeout=0.5, max_attempts=1)
        client = StreamkapClient(Requests(config, sleep=no_sleep))
        started = time.monotonic()
        async with client:
            with anyio.fail_after(15), pytest.raises(RequestFailed) as caught:
                await client.credentials.list()
    assert "Timeout" in str(caught.value)
    assert time.monotonic() - started < 15
