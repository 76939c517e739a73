"""The command line's own help and version, as argparse prints them."""

from __future__ import annotations

from importlib import metadata

import pytest

from provisioner.cli.main import main


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
