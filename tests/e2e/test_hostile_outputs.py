"""Issue 14, point 12: `--report` and `--metrics-file` never write through a planted symlink.

Both are replaced through a temp file with a random name, created O_EXCL|O_NOFOLLOW. A symlink at
an old fixed temp name is not followed (nor removed); a symlink at the report or metrics path
itself is refused: the file it points to (think /etc/passwd) is untouched, the link stays, and
the run says so.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from unittest import mock

import pytest

from provisioner.fs import atomic
from tests.support.manifests import one_credential
from tests.support.served import Served, run_cli

PRECIOUS = "root:x:0:0:root:/root:/bin/bash\n"


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "m.yaml").write_text(one_credential())
    (tmp_path / "passwd").write_text(PRECIOUS)  # stands in for /etc/passwd
    return tmp_path


def apply(sim: Served, workdir: Path) -> tuple[int, str]:
    result = run_cli(
        "apply",
        "m.yaml",
        "--report",
        "report.json",
        "--metrics-file",
        "run.prom",
        cwd=workdir,
        env=sim.env(),
    )
    return result.returncode, result.stderr


def test_symlinks_at_the_old_fixed_temp_names_are_not_followed(sim: Served, workdir: Path) -> None:
    victim = workdir / "passwd"
    planted = [workdir / ".report.json.tmp", workdir / ".run.prom.tmp", workdir / "run.prom.tmp"]
    for link in planted:
        link.symlink_to(victim)
    code, stderr = apply(sim, workdir)
    assert code == 0, stderr
    assert victim.read_text() == PRECIOUS
    assert all(link.is_symlink() for link in planted)
    assert json.loads((workdir / "report.json").read_text())["summary"]["created"] == 1
    assert "provisioner_" in (workdir / "run.prom").read_text()


def test_a_symlink_at_the_report_path_is_refused_not_written_through(
    sim: Served, workdir: Path
) -> None:
    victim = workdir / "passwd"
    (workdir / "report.json").symlink_to(victim)
    code, stderr = apply(sim, workdir)
    assert code == 1  # the run's own work succeeded, but the report asked for was not written
    assert "report.write_failed" in stderr
    assert "is a symbolic link (refusing to follow it)" in stderr
    assert victim.read_text() == PRECIOUS
    assert (workdir / "report.json").is_symlink()
    assert len(sim.state.live()) == 1


def test_a_symlink_at_the_metrics_path_is_refused_not_written_through(
    sim: Served, workdir: Path
) -> None:
    victim = workdir / "passwd"
    (workdir / "run.prom").symlink_to(victim)
    code, stderr = apply(sim, workdir)
    assert code == 1, stderr  # done, but a metrics file that cannot be written fails the run
    assert "metrics.write_failed" in stderr
    assert victim.read_text() == PRECIOUS
    assert (workdir / "run.prom").is_symlink()


def test_a_symlink_planted_at_the_temp_name_itself_is_not_followed(tmp_path: Path) -> None:
    """Were the random name guessed, O_EXCL|O_NOFOLLOW refuses it: the target stays untouched."""
    victim = tmp_path / "passwd"
    victim.write_text(PRECIOUS)
    (tmp_path / ".report.json.0123456789ab.tmp").symlink_to(victim)
    with (
        mock.patch("provisioner.fs.atomic.secrets.token_hex", return_value="0123456789ab"),
        pytest.raises(FileExistsError),
    ):
        atomic.replace_file(tmp_path / "report.json", b'{"secret": "nope"}\n')
    assert victim.read_text() == PRECIOUS
    assert not (tmp_path / "report.json").exists()
    assert os.path.islink(tmp_path / ".report.json.0123456789ab.tmp")
