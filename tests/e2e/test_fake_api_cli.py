"""The provisioner, as a subprocess, against the independent fake of the documented API
(tests/support/fake_api): the same run converges there as on the simulator (issue 20)."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.support.fake_api import serve_fake
from tests.support.served import REPO, human_text, run_cli


def test_apply_converges_against_the_fake(tmp_path: Path) -> None:
    shutil.copy(REPO / "manifests" / "analytics.yaml", tmp_path / "analytics.yaml")
    with serve_fake() as served:
        first = run_cli("apply", "analytics.yaml", cwd=tmp_path, env=served.env())
        assert first.returncode == 0, first.stderr
        assert "Applied: 2 created" in human_text(first.stderr)
        made = served.fake.client_credentials.values()
        assert sorted(item.description or "" for item in made) == [
            "BI dashboards [provisioner:analytics/dashboard]",
            "Warehouse exporter [provisioner:analytics/exporter]",
        ]
        assert {tuple(item.role_ids) for item in made} == {("fr-3",)}  # "Read Only"
        second = run_cli("apply", "analytics.yaml", cwd=tmp_path, env=served.env())
        assert second.returncode == 0, second.stderr
        assert "0 created, 0 replaced, 0 deleted, 2 unchanged, 0 failed" in human_text(
            second.stderr
        )
        assert ("POST", "/auth/access-token") in served.fake.calls
