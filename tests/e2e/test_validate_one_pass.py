"""Issue 22, item 4 and issue 21, item 5, through the command line (real subprocesses): every
problem in one pass, and two credentials that would share a dotenv variable refused."""

from __future__ import annotations

import os
import re
from pathlib import Path

from tests.support.manifests import ORDERS
from tests.support.served import REPO, run_cli

#: The README's example of a manifest with four mistakes, laid out on the lines it quotes.
FOUR_MISTAKES = """\
version: 1
sinks:
  local: {type: file, path: ./secrets}
  vault: {type: vault, address: "https://vault:8200", mount: secret}
services:
  - name: payments-api
    credentials:
      - name: ingest
        description: Payments ingestion
        sinks: [local]
        roles: []
        rolez: [Admin]
  - name: orders
    credentials:
      - name: cdc-reader
        rotate_after: 9x
        sinks: [valut]
        roles: [Admin]
"""


def console_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STREAMKAP_", "PROVISIONER_"))}
    return env | {"PYTHONPATH": str(REPO), "PROVISIONER_LOG_FORMAT": "console"}


def readme_example() -> list[str]:
    """The output the README shows for `provisioner validate manifests/`."""
    readme = (REPO / "README.md").read_text()
    block = re.search(r"\$ provisioner validate manifests/\n(.*?)\n *```", readme, re.DOTALL)
    assert block is not None
    return [line.strip() for line in block[1].splitlines()]


def test_four_mistakes_in_one_file_are_all_reported_in_one_run_as_the_readme_shows(
    tmp_path: Path,
) -> None:
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / "a.yaml").write_text(FOUR_MISTAKES)
    done = run_cli("validate", "manifests/", cwd=tmp_path, env=console_env())
    assert done.returncode == 2, done.stderr
    lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
    assert lines == readme_example()
    assert "unknown sink 'valut'; did you mean 'vault'?" in lines[3]
    assert lines[-1] == "error: 4 problem(s) in the manifests; nothing was changed"


def test_two_credentials_sharing_one_dotenv_variable_fail_validation_naming_both(
    tmp_path: Path,
) -> None:
    (tmp_path / "orders.yaml").write_text(ORDERS)
    done = run_cli("validate", "orders.yaml", cwd=tmp_path, env=console_env())
    assert done.returncode == 2, done.stderr
    assert (
        "orders.yaml:13: services[orders].credentials[cdc-service].name: 'orders/cdc-service' "
        "and 'orders/cdc' (at orders.yaml:12: services[orders].credentials[cdc].name) would "
        "both be stored as STREAMKAP_ORDERS_CDC_SERVICE_ID in sink 'dotenv'"
    ) in done.stderr
    assert not (tmp_path / "orders.env").exists()
