"""Issue 14, points 5 and 11: the env sink and what else lives at, or writes to, its path."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest
from pydantic import SecretStr

from provisioner.errors import SinkError
from provisioner.model import SinkRecord
from provisioner.sinks.base import SinkContext
from provisioner.sinks.env import EnvSink, EnvSinkOptions

WATCHDOG = 5.0


def make_sink(cwd: Path, path: str = "secrets.env") -> EnvSink:
    return EnvSink("dotenv", EnvSinkOptions(path=path), SinkContext(cwd=cwd))


def record(credential: str = "ingest", client_id: str = "cid-1") -> SinkRecord:
    return SinkRecord("payments-api", credential, client_id, SecretStr("s3cr3t-value"))


@contextmanager
def unblocked_after(fifo: Path, seconds: float) -> Iterator[None]:
    """If a reader still waits on `fifo` after `seconds`, open it for writing to let it go."""
    done = threading.Event()

    def release() -> None:
        if not done.wait(seconds):
            with suppress(OSError):
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))

    thread = threading.Thread(target=release, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


@pytest.mark.anyio
async def test_a_fifo_at_the_env_path_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "secrets.env"
    os.mkfifo(fifo)
    sink = make_sink(tmp_path)
    started = time.monotonic()
    with unblocked_after(fifo, WATCHDOG), pytest.raises(SinkError) as caught:
        await sink.read("payments-api", "ingest")
    assert time.monotonic() - started < WATCHDOG  # refused, not released by the watchdog
    assert "not a regular file" in str(caught.value)
    with unblocked_after(fifo, WATCHDOG), pytest.raises(SinkError):
        await sink.write(record())
    assert fifo.is_fifo()  # left as it was


@pytest.mark.anyio
async def test_a_directory_at_the_env_path_is_refused(tmp_path: Path) -> None:
    (tmp_path / "secrets.env").mkdir()
    with pytest.raises(SinkError, match=r"not a regular file|Is a directory"):
        await make_sink(tmp_path).read("payments-api", "ingest")


@pytest.mark.anyio
async def test_a_line_another_program_adds_during_the_run_survives_the_next_rewrite(
    tmp_path: Path,
) -> None:
    path = tmp_path / "secrets.env"
    path.write_text("KEEP=1\n")
    sink = make_sink(tmp_path)
    await sink.write(record("first", "cid-1"))
    with path.open("a") as other_program:
        other_program.write("ADDED_MEANWHILE=2\n")
    await sink.write(record("second", "cid-2"))
    text = path.read_text()
    assert "KEEP=1" in text
    assert "ADDED_MEANWHILE=2" in text
    assert "STREAMKAP_PAYMENTS_API_FIRST_CLIENT_ID='cid-1'" in text
    assert "STREAMKAP_PAYMENTS_API_SECOND_CLIENT_ID='cid-2'" in text
