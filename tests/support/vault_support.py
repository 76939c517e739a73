"""Helpers for tests against the Vault stub served on a real socket (for hvac and the CLI)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import hvac

from provisioner.simulator import VAULT_ROOT_TOKEN, VaultState, create_vault_app, serve_in_thread


@dataclass
class ServedVault:
    """The Vault stub on a socket, and how to reach it."""

    url: str
    state: VaultState

    def env(self, **extra: str) -> dict[str, str]:
        return {"VAULT_ADDR": self.url, "VAULT_TOKEN": VAULT_ROOT_TOKEN, **extra}

    def hvac(self, **options: Any) -> hvac.Client:
        return hvac_client(self.url, **options)

    def read(self, path: str, mount: str = "secret", **options: Any) -> Any:
        return hvac_read(self.url, path, mount, **options)


def hvac_client(url: str, **options: Any) -> hvac.Client:
    """A real Vault client (hvac) logged in with the stub's root token."""
    return hvac.Client(url=url, token=VAULT_ROOT_TOKEN, **options)


def hvac_read(url: str, path: str, mount: str = "secret", **options: Any) -> Any:
    """What hvac reads at `mount/data/path` (raising on a deleted version)."""
    kv = hvac_client(url, **options).secrets.kv.v2
    answer = kv.read_secret_version(path, mount_point=mount, raise_on_deleted_version=True)
    return answer["data"]["data"]


@contextmanager
def served_vault(
    state: VaultState | None = None, *, ssl_certfile: str | None = None
) -> Iterator[ServedVault]:
    state = state or VaultState()
    with serve_in_thread(create_vault_app(state), ssl_certfile=ssl_certfile) as url:
        yield ServedVault(url, state)
