"""`provisioner simulate --kube-port --kubeconfig`: the kubernetes sink tried without a cluster.

The simulator runs as a user would run it (a subprocess on free ports, stopped with SIGTERM),
the provisioner reaches its Kubernetes stub through the kubeconfig it wrote, and the official
`kubernetes` client reads back what the sink wrote.
"""

from __future__ import annotations

import base64
import os
import signal
import stat
from pathlib import Path
from typing import Any

import httpx
import pytest

from provisioner.simulator import ADMIN_CLIENT_ID, ADMIN_SECRET
from provisioner.sinks.kubernetes import KEY_ANNOTATION, MANAGED_BY, MANAGER
from tests.support.kube_support import entry_point_site
from tests.support.served import REPO, human_text, run_cli
from tests.support.watch import watched

MANIFEST = """\
version: 1
defaults: {roles: [read_only]}
services:
  - name: payments-api
    credentials:
      - name: ingest
"""
SECRET_NAME = "streamkap-payments-api-ingest"


def offline_env() -> dict[str, str]:
    """This environment without Streamkap, Vault, Kubernetes or provisioner settings."""
    prefixes = ("STREAMKAP_", "PROVISIONER_", "VAULT_", "KUBECONFIG", "KUBERNETES_")
    env = {key: value for key, value in os.environ.items() if not key.startswith(prefixes)}
    return {**env, "PYTHONPATH": str(REPO), "PROVISIONER_LOG_FORMAT": "console"}


def cli_env(tmp_path: Path, **settings: str) -> dict[str, str]:
    """For `provisioner apply`: `settings`, and the `k8s` sink type even where the installed
    distribution predates it."""
    site = entry_point_site(tmp_path / "site")
    return offline_env() | settings | {"PYTHONPATH": os.pathsep.join([str(site), str(REPO)])}


def served_url(line: str) -> str:
    """The URL of an announcement: `<name>: serving on <url> (...)`."""
    return line.split("serving on ", 1)[1].split()[0]


def official_core(kubeconfig: Path) -> Any:
    """The official client's CoreV1Api, configured from the kubeconfig the simulator wrote."""
    from kubernetes import client, config

    configuration = client.Configuration()
    load: Any = config.load_kube_config  # the client ships no type hints
    load(config_file=str(kubeconfig), client_configuration=configuration)
    return client.CoreV1Api(client.ApiClient(configuration))


def test_simulate_serves_a_kubernetes_stub_the_kubernetes_sink_writes_to(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    (tmp_path / "m.yaml").write_text(MANIFEST)
    ports = ("--port", "0", "--vault-port", "0", "--kube-port", "0")
    with watched(
        "simulate", *ports, "--kubeconfig", kubeconfig, cwd=tmp_path, env=offline_env()
    ) as server:
        api = served_url(server.wait_line("simulator: serving on "))
        server.wait_line("vault: serving on ")
        kube = served_url(server.wait_line("kubernetes: serving on "))
        assert stat.S_IMODE(kubeconfig.stat().st_mode) == 0o600

        env = cli_env(
            tmp_path,
            STREAMKAP_HOST=api,
            STREAMKAP_CLIENT_ID=ADMIN_CLIENT_ID,
            STREAMKAP_SECRET=ADMIN_SECRET,
            KUBECONFIG=str(kubeconfig),
        )
        first = run_cli("apply", "m.yaml", "--sink", "k8s:payments", cwd=tmp_path, env=env)
        assert first.returncode == 0, first.stderr
        assert "Applied: 1 created, 0 replaced, 0 deleted, 0 unchanged, 0 failed" in human_text(
            first.stderr
        )

        core = official_core(kubeconfig)
        secret = core.read_namespaced_secret(SECRET_NAME, "payments")
        assert secret.type == "Opaque"
        assert secret.metadata.labels[MANAGED_BY] == MANAGER
        assert secret.metadata.annotations[KEY_ANNOTATION] == "payments-api/ingest"
        data = {key: base64.b64decode(value).decode() for key, value in secret.data.items()}
        assert data["service"] == "payments-api"
        assert data["credential"] == "ingest"
        # What the Secret holds is a live credential of the simulated API: it logs in.
        login = {"client_id": data["client_id"], "secret": data["secret"]}
        assert httpx.post(f"{api}/auth/access-token", json=login).status_code == 200
        assert kube in kubeconfig.read_text()

        second = run_cli("apply", "m.yaml", "--sink", "k8s:payments", cwd=tmp_path, env=env)
        assert second.returncode == 0, second.stderr
        assert "Applied: 0 created, 0 replaced, 0 deleted, 1 unchanged, 0 failed" in human_text(
            second.stderr
        )
        again = core.read_namespaced_secret(SECRET_NAME, "payments")
        assert again.metadata.resource_version == secret.metadata.resource_version

        assert server.stop(signal.SIGTERM) == 0
    assert "simulator: stopped" in server.text
    assert "Traceback" not in server.text


@pytest.mark.parametrize(
    "flags", [["--kube-port", "0"], ["--kubeconfig", "kubeconfig"]], ids=["port", "kubeconfig"]
)
def test_the_kubernetes_stub_needs_both_flags(tmp_path: Path, flags: list[str]) -> None:
    result = run_cli("simulate", "--port", "0", *flags, cwd=tmp_path, env=offline_env())
    assert result.returncode == 2
    assert "--kube-port and --kubeconfig go together" in result.stderr
    assert not (tmp_path / "kubeconfig").exists()


def test_simulate_with_a_kubernetes_sink_says_how_to_serve_its_stub(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text(MANIFEST)
    sink = ("--sink", "k8s:payments")
    result = run_cli("apply", "m.yaml", "--simulate", *sink, cwd=tmp_path, env=cli_env(tmp_path))
    assert result.returncode == 2
    assert "provisioner simulate --kube-port P --kubeconfig FILE" in result.stderr
