"""A FIFO where the Vault sink reads a credential file: refused at once, never waited on.

Before, opening a FIFO at `secret_id_file`, `jwt_file` or `VAULT_TOKEN_FILE` waited for a writer
inside the process, and neither a first nor a second SIGTERM ended the run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.served import Served
from tests.support.vault_support import ServedVault

pytestmark = pytest.mark.e2e

MANIFEST = """version: 1
sinks:
  vault: {type: vault, address: '%s', mount: secret%s}
services:
  - name: api
    credentials:
      - name: c
        roles: [read_only]
        sinks: [vault]
"""
APPROLE = ", auth: {method: approle, role_id: r, secret_id_file: fifo}"
KUBERNETES = ", auth: {method: kubernetes, role: r, jwt_file: fifo}"


def apply_until_it_ends(cwd: Path, env: dict[str, str]) -> tuple[int, str]:
    """Run apply; if it has not ended on its own, two SIGTERMs, then SIGKILL as a last resort.

    Returns the exit code and stderr, and which of those it took (asserted by the caller)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "provisioner", "apply", "m.yaml"],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _, stderr = process.communicate(timeout=20)
        return process.returncode, stderr
    except subprocess.TimeoutExpired:
        for _ in range(2):
            process.send_signal(signal.SIGTERM)
            try:
                _, stderr = process.communicate(timeout=5)
                return process.returncode, "ended only by SIGTERM:\n" + stderr
            except subprocess.TimeoutExpired:
                continue
        process.kill()
        _, stderr = process.communicate()
        return process.returncode, "ended only by SIGKILL:\n" + stderr


@pytest.mark.parametrize(("auth", "variable"), [(APPROLE, None), (KUBERNETES, None), ("", "file")])
def test_a_fifo_credential_file_is_refused_without_waiting(
    sim: Served, vault: ServedVault, tmp_path: Path, auth: str, variable: str | None
) -> None:
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "m.yaml").write_text(MANIFEST % (vault.url, auth))
    env = sim.env(VAULT_ADDR=vault.url)
    if variable is not None:
        env["VAULT_TOKEN_FILE"] = str(tmp_path / "fifo")
    code, stderr = apply_until_it_ends(tmp_path, env)
    assert not stderr.startswith("ended only by"), stderr
    assert code == 2, stderr
    assert "fifo" in stderr, stderr
    assert "not a regular file" in stderr, stderr
    assert sim.state.live() == []
