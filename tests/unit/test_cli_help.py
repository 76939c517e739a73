"""The command line's own help and version, as argparse prints them."""

from __future__ import annotations

import argparse
from importlib import metadata
from pathlib import Path

import pytest

from provisioner.cli.main import build_parser, main


def test_version_prints_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == (
        f"provisioner {metadata.version('streamkap-provisioner')}"
    )


def test_plan_help_does_not_claim_to_delete(capsys: pytest.CaptureFixture[str]) -> None:
    """Plan writes nothing: its --prune only plans deletions."""
    with pytest.raises(SystemExit):
        main(["plan", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert "--prune also plan the deletion of orphaned credentials" in help_text
    assert "delete orphaned credentials" not in help_text.replace("deletion of orphaned", "")


def test_the_readme_synopsis_of_simulate_lists_every_flag() -> None:
    """The README's command table is where users look; a flag missing there is a flag unknown."""
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    (row,) = [line for line in readme.splitlines() if line.startswith("| `provisioner simulate")]
    commands = next(
        action
        for action in build_parser()._actions
        if isinstance(action, argparse._SubParsersAction)
    )
    simulate = commands.choices["simulate"]
    flags = [option for action in simulate._actions for option in action.option_strings]
    assert [flag for flag in flags if flag.startswith("--") and flag not in row] == ["--help"]


def test_the_readme_says_how_to_point_the_tool_at_the_simulator() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    quick_start = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    for needed in (
        "provisioner simulate --port 8080 --vault-port 8200",
        "STREAMKAP_HOST=",
        "STREAMKAP_CLIENT_ID=sim-admin",
        "VAULT_ADDR=http://127.0.0.1:8200",
        "VAULT_TOKEN=sim-vault-root-token",
        ".provisioner-simulator.json",
    ):
        assert needed in quick_start
