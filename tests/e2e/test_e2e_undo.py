"""Deliver or undo, end to end: a sink that refuses writes leaves no credential of that run live,
and the other sinks hold what they held before."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from dotenv import dotenv_values

from provisioner.model import owner_key
from tests.support.served import Served, run_cli, served
from tests.support.vault_support import ServedVault, served_vault

MANIFEST = """\
version: 1
defaults:
  sinks: [files, locked]
  roles: [Admin]
sinks:
  files: {type: file, path: ./secrets}
  locked: {type: file, path: ./locked}
services:
  - name: svc
    credentials:
      - name: one
      - name: two
"""


def apply_bound_by_file_modes(sim: Served, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run apply as a process that file modes bind (root keeps its uid, loses DAC override)."""
    prefix = []
    if os.geteuid() == 0:
        drop = "-dac_override,-dac_read_search"
        prefix = ["setpriv", f"--bounding-set={drop}", f"--inh-caps={drop}"]
    return subprocess.run(
        [*prefix, sys.executable, "-m", "provisioner", "apply", "manifests"],
        cwd=cwd,
        env=sim.env(PROVISIONER_MAX_ATTEMPTS="2"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_permission_denied_undoes_the_credential_and_a_later_run_converges(tmp_path: Path) -> None:
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / "m.yaml").write_text(MANIFEST)
    locked = tmp_path / "locked" / "svc"
    locked.mkdir(parents=True)
    locked.chmod(0o500)  # readable, not writable
    with served() as sim:
        result = apply_bound_by_file_modes(sim, tmp_path)
        assert result.returncode == 1, result.stderr
        assert "failed: svc/one: sink 'locked': cannot write" in result.stderr
        assert "Permission denied" in result.stderr
        assert sim.state.live() == []  # both created, both taken back
        assert len(sim.state.calls("DELETE")) == 2
        assert not (tmp_path / "secrets" / "svc" / "one.json").exists()  # the copy is gone too
        locked.chmod(0o700)
        again = apply_bound_by_file_modes(sim, tmp_path)
        assert again.returncode == 0, again.stderr
        assert sorted(owner_key(r.description) or "" for r in sim.state.live()) == [
            "svc/one",
            "svc/two",
        ]


REPLACED = """\
version: 1
defaults:
  roles: [ReadOnly]
  sinks: [files, dotenv, vault]
sinks:
  files: {{type: file, path: ./secrets}}
  dotenv: {{type: env, path: ./app.env}}
  vault: {{type: vault, address: '{vault}', mount: secret}}
services:
  - name: svc
    service_id: {service_id}
    credentials:
      - name: one
      - name: two
"""


def held(cwd: Path, vault: ServedVault) -> dict[str, set[tuple[str, str]]]:
    """Per credential, the (client_id, secret) pairs its three sinks hold (one when they agree)."""
    env = dotenv_values(cwd / "app.env")
    found: dict[str, set[tuple[str, str]]] = {}
    for name in ("one", "two"):
        document = json.loads((cwd / "secrets" / "svc" / f"{name}.json").read_text())
        stem = f"STREAMKAP_SVC_{name.upper()}"
        data = vault.read(f"svc/{name}")
        found[name] = {
            (document["client_id"], document["secret"]),
            (env[f"{stem}_CLIENT_ID"] or "", env[f"{stem}_SECRET"] or ""),
            (data["client_id"], data["secret"]),
        }
    return found


def test_a_replace_vault_refuses_leaves_every_sink_holding_the_old_working_secret(
    tmp_path: Path,
) -> None:
    """A new service_id replaces both; Vault refuses writes: the others get the old records back."""
    (tmp_path / "manifests").mkdir()
    manifest = tmp_path / "manifests" / "m.yaml"
    with served() as sim, served_vault() as vault:
        env = sim.env(**vault.env(), PROVISIONER_MAX_ATTEMPTS="2")
        manifest.write_text(REPLACED.format(service_id="svc-a", vault=vault.url))
        assert run_cli("apply", "manifests", cwd=tmp_path, env=env).returncode == 0
        before = held(tmp_path, vault)
        old = {record.client_id: record.secret for record in sim.state.live()}
        assert all(len(pairs) == 1 and pairs <= old.items() for pairs in before.values())

        manifest.write_text(REPLACED.format(service_id="svc-b", vault=vault.url))
        vault.state.fail_writes = True
        failed = run_cli("apply", "manifests", cwd=tmp_path, env=env)
        assert failed.returncode == 1, failed.stderr
        assert "Vault is sealed" in failed.stderr
        assert {r.client_id: r.secret for r in sim.state.live()} == old  # new ones taken back
        assert held(tmp_path, vault) == before  # files and dotenv hold the old records again
        assert all(sim.state.login(cid, secret) for cid, secret in old.items())  # still working

        vault.state.fail_writes = False
        fixed = run_cli("apply", "manifests", cwd=tmp_path, env=env)
        assert fixed.returncode == 0, fixed.stderr
        new = {record.client_id: record.secret for record in sim.state.live()}
        assert len(new) == 2
        assert not new.keys() & old.keys()
        assert all(
            len(pairs) == 1 and pairs <= new.items() for pairs in held(tmp_path, vault).values()
        )
        sim.state.reset_calls()
        assert run_cli("apply", "manifests", cwd=tmp_path, env=env).returncode == 0
        assert sim.state.write_calls() == []
