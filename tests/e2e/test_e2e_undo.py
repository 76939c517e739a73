"""Deliver or undo, end to end: a sink that refuses writes leaves no credential of that run live."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from provisioner.reconcile.model import owner_key
from tests.support.served import Served, served

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
