"""Point 4 of issue 14: an endless or oversized answer fails its call cleanly, bounded in memory."""

from __future__ import annotations

import resource

import pytest
from pydantic import SecretStr

from provisioner.errors import AmbiguousCreate, RequestFailed
from provisioner.http.transport import MAX_ANSWER_BYTES
from provisioner.streamkap import ApiConfig, Requests, StreamkapClient
from provisioner.streamkap.client_credentials import LISTING_MAX_BYTES
from tests.support.factories import desired, no_sleep
from tests.support.hostile import flood, hostile_server, truncated

MiB = 1024 * 1024


def client_of(url: str) -> StreamkapClient:
    config = ApiConfig(url, access_token=SecretStr("t"), max_attempts=3)
    return StreamkapClient(Requests(config, sleep=no_sleep))


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


@pytest.mark.anyio
async def test_an_endless_listing_stops_at_its_cap_and_is_not_retried() -> None:
    before = peak_rss_mib()
    with hostile_server(flood()) as server:
        async with client_of(server.url) as client:
            with pytest.raises(RequestFailed) as caught:
                await client.credentials.list()
    assert f"larger than {LISTING_MAX_BYTES // MiB} MiB" in str(caught.value)
    assert len(server.requests) == 1  # the same answer again would be as large: no retry
    # The cap, plus its copy when joined, plus slack: never the whole flood (512 MiB here).
    assert peak_rss_mib() - before < 3 * LISTING_MAX_BYTES / MiB


@pytest.mark.anyio
async def test_an_endless_answer_to_a_create_stops_at_the_single_object_cap() -> None:
    with hostile_server(flood(b'{"secret": "' + b"x" * 65536)) as server:
        async with client_of(server.url) as client:
            with pytest.raises(AmbiguousCreate) as caught:  # it was sent: it may have happened
                await client.credentials.create(desired())
    assert f"larger than {MAX_ANSWER_BYTES // MiB} MiB" in str(caught.value)


@pytest.mark.anyio
async def test_a_truncated_json_answer_is_a_transport_error_not_a_crash() -> None:
    body = b'[{"client_id": "a", "description": "x"}]'
    with hostile_server(truncated(body, keep=10)) as server:
        async with client_of(server.url) as client:
            with pytest.raises(RequestFailed):
                await client.credentials.list()
