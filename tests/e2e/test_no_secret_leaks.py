"""No secret, created or the provisioner's own, ever reaches output, logs, reports or errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from provisioner.simulator import FaultConfig, SimulatorState
from tests.support.served import run_cli, served

LOGIN_SECRET = "login-secret-7f3a9c1e5d"

MANIFEST = """\
version: 1
defaults:
  roles: [admin]
sinks:
  files: {type: file, path: ./secrets}
  dotenv: {type: env, path: ./app.env}
  blocked: {type: file, path: ./blocked}
services:
  - name: good
    credentials:
%s
  - name: bad
    credentials:
      - name: unwritable
        sinks: [blocked]
      - name: refused
        permissions: [perm-nope]
        sinks: [files]
"""


@pytest.mark.parametrize("log_format", ["json", "console"])
def test_no_secret_in_any_output_through_successes_and_failures(
    tmp_path: Path, log_format: str
) -> None:
    creds = "".join(f"      - name: c{i}\n        sinks: [files, dotenv]\n" for i in range(20))
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / "m.yaml").write_text(MANIFEST % creds.rstrip("\n"))
    (tmp_path / "blocked").write_text("not a directory")
    state = SimulatorState(
        admin_secret=LOGIN_SECRET,
        permissions={"perm-read"},
        faults=FaultConfig(
            error_rate=0.1, drop_after_create_rate=0.1, error_after_create_rate=0.1, token_ttl=1
        ),
    )
    env = {
        "STREAMKAP_SECRET": LOGIN_SECRET,
        "PROVISIONER_LOG_LEVEL": "debug",
        "PROVISIONER_LOG_FORMAT": log_format,
        "PROVISIONER_MAX_ATTEMPTS": "10",
    }
    outputs: list[str] = []
    with served(state) as sim:
        for run in range(2):
            report = tmp_path / f"report-{run}.json"
            result = run_cli(
                "apply", "manifests", "--report", report, cwd=tmp_path, env=sim.env(**env)
            )
            assert result.returncode == 1  # the two bad credentials fail every time
            outputs += [result.stdout, result.stderr, report.read_text()]
        plan = run_cli("plan", "manifests", "--json", cwd=tmp_path, env=sim.env(**env))
        outputs += [plan.stdout, plan.stderr]
        secrets = state.issued_secrets()
    assert len(secrets) >= 20  # every good credential, plus leftovers of ambiguous creates
    assert "credential.created" in outputs[1]
    assert "failed: bad/refused" in outputs[1]
    everything = "\n".join(outputs)
    for secret in [*secrets, LOGIN_SECRET]:
        assert secret not in everything
