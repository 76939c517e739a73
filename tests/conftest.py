"""Shared fixtures: the anyio backend, the umask, manifest writing, logging reset, and the
simulator, Vault stub and Kubernetes stub served on real sockets."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import structlog
import trustme

from tests.support.kube_support import ServedKube, served_kube
from tests.support.served import Served, served
from tests.support.vault_support import ServedVault, served_vault


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


@pytest.fixture
def vault() -> Iterator[ServedVault]:
    """The Vault stub served on a real socket for one test, logged in with its root token."""
    with served_vault() as server:
        yield server


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    """A certificate authority of the module's own, for the TLS tests."""
    return trustme.CA()


@pytest.fixture
def tls_vault(ca: trustme.CA, tmp_path: Path) -> Iterator[ServedVault]:
    """The Vault stub over TLS, its certificate (for 127.0.0.1 and localhost) signed by `ca`."""
    pem = tmp_path / "server.pem"
    ca.issue_cert("127.0.0.1", "localhost").private_key_and_cert_chain_pem.write_to_path(pem)
    with served_vault(ssl_certfile=str(pem)) as server:
        yield server


@pytest.fixture
def kube(tmp_path: Path) -> Iterator[ServedKube]:
    """The Kubernetes Secrets stub on a socket, and a kubeconfig under tmp_path that reaches it."""
    with served_kube(tmp_path) as server:
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
