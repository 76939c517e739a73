"""The `vault` sink (KV version 2): the sink in `sink`, its options and connection in `config`,
how it gets a token in `auth`."""

from provisioner.sinks.vault.config import VaultSinkOptions
from provisioner.sinks.vault.sink import VaultSink

__all__ = ["VaultSink", "VaultSinkOptions"]
