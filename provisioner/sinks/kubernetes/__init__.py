"""The `kubernetes` sink: the sink in `sink`, its options and connection in `config`."""

from provisioner.sinks.kubernetes.config import KubernetesSinkOptions
from provisioner.sinks.kubernetes.sink import (
    KEY_ANNOTATION,
    MANAGED_BY,
    MANAGER,
    KubernetesSink,
)

__all__ = ["KEY_ANNOTATION", "MANAGED_BY", "MANAGER", "KubernetesSink", "KubernetesSinkOptions"]
