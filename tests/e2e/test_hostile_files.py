"""Issue 14, points 9 and 10: the lock fails closed; stale temp files from a kill are swept."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.support.served import run_cli, served

MANIFEST = """\
version: 1
sinks:
  local: {type: file, path: ./secrets}
  dotenv: {type: env, path: ./app.env}
services:
  - name: api
    credentials:
      - name: c
        roles: [admin]
        sinks: [local, dotenv]
"""


def plant_directory(lock: Path) -> None:
    lock.mkdir()


def plant_symlink(lock: Path) -> None:
    lock.symlink_to(lock.parent / "elsewhere")


@pytest.mark.parametrize("plant", [plant_directory, plant_symlink])
def test_a_lock_that_cannot_be_opened_fails_the_run_before_any_write(
    tmp_path: Path, plant: object
) -> None:
    (tmp_path / "m.yaml").write_text(MANIFEST)
    (tmp_path / "secrets").mkdir(mode=0o700)
    lock = tmp_path / "secrets" / ".provisioner.lock"
    plant(lock)  # type: ignore[operator]
    with served() as sim:
        done = run_cli("apply", "m.yaml", cwd=tmp_path, env=sim.env())
        assert sim.state.live() == []  # nothing was created
    assert done.returncode == 1, done.stderr
    assert f"cannot open the lock {lock}" in done.stderr
    assert not (tmp_path / "secrets" / "api").exists()
    assert not (tmp_path / "app.env").exists()


def test_stale_temp_files_of_a_killed_run_are_swept_at_the_next_start(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text(MANIFEST)
    service = tmp_path / "secrets" / "api"
    service.mkdir(parents=True, mode=0o700)
    an_hour_ago = time.time() - 3600
    stale = [service / ".c.json.0123456789ab.tmp", tmp_path / ".app.env.a1b2c3d4e5f6.tmp"]
    kept = [
        service / ".c.json.tmp",  # not our naming
        service / "c.json.0123456789ab.tmp",  # not our naming (no leading dot)
        tmp_path / ".other.env.a1b2c3d4e5f6.tmp",  # another file's temp: not this sink's
    ]
    for path in stale + kept:
        path.write_text('{"secret": "live"}')
        os.utime(path, (an_hour_ago, an_hour_ago))
    fresh = service / ".d.json.ffffffffffff.tmp"
    fresh.write_text("{}")
    os.utime(fresh, (time.time() + 3600, time.time() + 3600))  # newer than the run's start
    with served() as sim:
        done = run_cli("apply", "m.yaml", cwd=tmp_path, env=sim.env())
    assert done.returncode == 0, done.stderr
    assert [path for path in stale if path.exists()] == []
    assert all(path.exists() for path in [*kept, fresh])
    assert "sink.temp_swept" in done.stderr
