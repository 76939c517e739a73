"""Shared fixtures: the anyio backend, the umask, manifest writing, and logging reset."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import structlog

from tests.support.served import Served, served


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=[0o022, 0o000], ids=["umask022", "umask000"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


@pytest.fixture
def sim() -> Iterator[Served]:
    """The simulator served on a real socket for one test."""
    with served() as server:
        yield server


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    yield
    structlog.reset_defaults()


WriteManifest = Callable[[str, str], Path]


@pytest.fixture
def write_manifest(tmp_path: Path) -> WriteManifest:
    """Write a manifest file under tmp_path/manifests and return its path."""

    def write(name: str, text: str) -> Path:
        path = tmp_path / "manifests" / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    return write


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/e2e/ is an end-to-end test: `pytest -m "not e2e"` is the fast loop."""
    e2e = Path(__file__).parent / "e2e"
    for item in items:
        if e2e in item.path.parents:
            item.add_marker(pytest.mark.e2e)
