"""Third-party sinks: a distribution with a `provisioner.sinks` entry point is usable by name."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from tests.support.served import REPO, Served, run_cli

PLUGIN = Path(__file__).parents[1] / "plugin_sink"
MANIFEST = """\
version: 1
sinks:
  shared: {type: jsonfile, path: ./all.json}
defaults:
  roles: [Admin]
services:
  - name: orders
    credentials:
      - name: reader
        sinks: [shared]
      - name: writer
"""


def install(site: Path) -> None:
    """Leave in `site` what `pip install tests/plugin_sink` would: the module and its dist-info."""
    project = tomllib.loads((PLUGIN / "pyproject.toml").read_text())["project"]
    dist_info = site / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n"
    )
    lines = []
    for group, entries in project["entry-points"].items():
        lines += [f"[{group}]", *(f"{name} = {target}" for name, target in entries.items())]
    (dist_info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    shutil.copy(PLUGIN / "provisioner_jsonfile_sink.py", site)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "m.yaml").write_text(MANIFEST)
    return tmp_path / "work"


def with_plugin(env: dict[str, str], site: Path) -> dict[str, str]:
    return {**env, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)])}


def cli(sim: Served, workdir: Path, *args: str, site: Path) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, cwd=workdir, env=with_plugin(sim.env(), site))


def test_a_plugin_sink_is_usable_from_manifests_and_sink_uris(
    sim: Served, workdir: Path, tmp_path: Path
) -> None:
    install(tmp_path / "site")
    args = ("apply", "m.yaml", "--sink", "jsonfile:./default.json")
    result = cli(sim, workdir, *args, site=tmp_path / "site")
    assert result.returncode == 0, result.stderr
    secrets = {record.client_id: record.secret for record in sim.state.live()}
    reader = json.loads((workdir / "all.json").read_text())["orders/reader"]
    writer = json.loads((workdir / "default.json").read_text())["orders/writer"]
    assert secrets == {reader["client_id"]: reader["secret"], writer["client_id"]: writer["secret"]}
    again = cli(sim, workdir, *args, site=tmp_path / "site")
    assert "0 created, 0 replaced, 0 deleted, 2 unchanged" in again.stderr  # it reads back


def test_without_the_plugin_its_type_is_unknown(sim: Served, workdir: Path, tmp_path: Path) -> None:
    result = cli(sim, workdir, "validate", "m.yaml", site=tmp_path / "empty")
    assert result.returncode == 2
    assert "unknown sink type 'jsonfile' (installed: " in result.stderr
