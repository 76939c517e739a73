"""`--simulate` runs follow on from each other: the simulators' state is kept in the working
directory, so the demo's second run changes nothing (issue 15, point 10)."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

from provisioner.reconcile.session import SIMULATOR_STATE_FILE
from tests.support.served import REPO, run_cli


def offline_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STREAMKAP_", "PROVISIONER_"))}
    return env | {"PYTHONPATH": str(REPO), "PROVISIONER_LOG_FORMAT": "console"}


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    """A copy of the example manifests (file, dotenv and Vault sinks), as `make demo` uses."""
    shutil.copytree(REPO / "manifests", tmp_path / "manifests")
    return tmp_path


def simulate(demo: Path, command: str = "apply") -> str:
    result = run_cli(command, "manifests", "--simulate", cwd=demo, env=offline_env())
    assert result.returncode == 0, result.stderr
    return result.stderr


def test_a_second_demo_run_changes_nothing(demo: Path) -> None:
    assert "Applied: 8 created" in simulate(demo)
    assert "Applied: 0 created, 0 replaced, 0 deleted, 8 unchanged, 0 failed." in simulate(demo)


def test_a_simulated_plan_after_an_edit_shows_the_change(demo: Path) -> None:
    simulate(demo)
    manifest = demo / "manifests" / "platform.yaml"
    text = manifest.read_text()
    assert "roles: [Admin]" in text
    manifest.write_text(text.replace("roles: [Admin]", "roles: [Read Only]", 1))
    planned = simulate(demo, "plan")
    assert "drift:roles" in planned
    assert "Plan: 0 to create, " in planned  # the rest is as the first run left it


def test_the_state_file_is_private_and_deleting_it_starts_over(demo: Path) -> None:
    simulate(demo)
    state = demo / SIMULATOR_STATE_FILE
    assert stat.S_IMODE(state.stat().st_mode) == 0o600
    state.unlink()  # how the README says to start over
    assert "Plan: 8 to create, 0 to replace" in simulate(demo, "plan")


def test_a_damaged_state_file_is_refused_with_how_to_start_over(demo: Path) -> None:
    (demo / SIMULATOR_STATE_FILE).write_text("{not json")
    result = run_cli("apply", "manifests", "--simulate", cwd=demo, env=offline_env())
    assert result.returncode == 2
    assert f"{SIMULATOR_STATE_FILE}: cannot resume the simulator" in result.stderr
    assert "delete it" in result.stderr


def test_a_simulated_plan_reads_only_and_writes_no_state(demo: Path) -> None:
    """Issue 22: `plan` "reads only", the simulator's state file included."""
    assert "Plan: 8 to create" in simulate(demo, "plan")
    assert not (demo / SIMULATOR_STATE_FILE).exists()
    simulate(demo)
    state = demo / SIMULATOR_STATE_FILE
    before = (state.read_bytes(), state.stat().st_mtime_ns)
    assert "Plan: 0 to create, 0 to replace, 0 to delete, 8 unchanged." in simulate(demo, "plan")
    assert (state.read_bytes(), state.stat().st_mtime_ns) == before
