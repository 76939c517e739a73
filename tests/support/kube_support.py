"""Helpers for tests against the Kubernetes Secrets stub on a socket (sink, CLI, official client).

Until the distribution is reinstalled with this checkout's entry points, the `kubernetes` and
`k8s` sink types are registered here: in-process by adding them to the cached registry, and for
a CLI subprocess by a dist-info directory on its PYTHONPATH (what `pip install` would leave).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from provisioner.simulator import serve_in_thread
from provisioner.simulator.kubernetes import KUBE_TOKEN, KubeState, create_kube_app
from provisioner.sinks import sink_types
from provisioner.sinks.base import SinkType
from provisioner.sinks.kubernetes import KubernetesSink
from tests.support.served import REPO

ENTRY = "provisioner.sinks.kubernetes:KubernetesSink"


def register_in_process() -> None:
    """Make `kubernetes`/`k8s` known to this process's registry (a no-op once installed)."""
    types = sink_types()
    for name in ("kubernetes", "k8s"):
        types.setdefault(name, KubernetesSink)  # type: ignore[arg-type]
    _check: SinkType = types["kubernetes"]


def entry_point_site(site: Path) -> Path:
    """A directory holding a dist-info that registers the sink types, for PYTHONPATH."""
    dist_info = site / "streamkap_provisioner_kubernetes_entry-0.dist-info"
    dist_info.mkdir(parents=True, exist_ok=True)
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: streamkap-provisioner-kubernetes-entry\nVersion: 0\n"
    )
    (dist_info / "entry_points.txt").write_text(
        f"[provisioner.sinks]\nkubernetes = {ENTRY}\nk8s = {ENTRY}\n"
    )
    return site


def write_kubeconfig(path: Path, server: str, token: str = KUBE_TOKEN, **cluster: Any) -> Path:
    """A kubeconfig whose current context reaches `server` with a bearer token."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "stub", "cluster": {"server": server, **cluster}}],
        "users": [{"name": "provisioner", "user": {"token": token}}],
        "contexts": [{"name": "stub", "context": {"cluster": "stub", "user": "provisioner"}}],
        "current-context": "stub",
    }
    path.write_text(yaml.safe_dump(config))
    return path


@dataclass
class ServedKube:
    """The Secrets stub on a socket, and a kubeconfig pointing at it."""

    url: str
    state: KubeState
    kubeconfig: Path

    def env(self, site: Path | None = None) -> dict[str, str]:
        """Settings that point a CLI subprocess at the stub (and register the sink types)."""
        env = {"KUBECONFIG": str(self.kubeconfig)}
        if site is not None:
            paths = [str(entry_point_site(site)), str(REPO), os.environ.get("PYTHONPATH", "")]
            env["PYTHONPATH"] = os.pathsep.join(filter(None, paths))
        return env

    def official(self) -> Any:
        """The official client's CoreV1Api, configured from the same kubeconfig."""
        from kubernetes import client, config

        configuration = client.Configuration()
        load: Any = config.load_kube_config
        load(config_file=str(self.kubeconfig), client_configuration=configuration)
        return client.CoreV1Api(client.ApiClient(configuration))


@contextmanager
def served_kube(tmp_path: Path, state: KubeState | None = None) -> Iterator[ServedKube]:
    state = state or KubeState(namespaces={"default", "payments"})
    with serve_in_thread(create_kube_app(state)) as url:
        yield ServedKube(url, state, write_kubeconfig(tmp_path / "kubeconfig", url))
