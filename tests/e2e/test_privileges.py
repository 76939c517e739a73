"""Permission tests need a user that file modes bind; as root, rerun them without that privilege."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from tests.support.served import REPO

DROP = "-dac_override,-dac_read_search"


@pytest.mark.skipif(
    os.geteuid() != 0, reason="not root: the permission tests already ran in this session"
)
@pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv (util-linux) is missing")
def test_permission_tests_pass_with_root_privileges_dropped() -> None:
    """Root ignores file modes; without CAP_DAC_OVERRIDE it is bound by them like anyone."""
    command = [
        "setpriv",
        f"--bounding-set={DROP}",
        f"--inh-caps={DROP}",
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "tests/unit/test_sink_file.py",
        "-k",
        "unwritable or unreadable",
    ]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout
    assert "skipped" not in result.stdout
