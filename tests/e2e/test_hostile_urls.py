"""Issue 14, point 8: a URL's user and password never reach the log."""

from __future__ import annotations

from pathlib import Path

import pytest

from provisioner.logs import scrub_url
from tests.support.hostile import hostile_server, reflect
from tests.support.manifests import one_credential
from tests.support.served import REPO, run_cli

PASSWORD = "pushgateway-password-31f"


def test_a_failed_push_logs_the_pushgateway_without_its_credentials(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text(one_credential())
    env = {"PYTHONPATH": str(REPO), "PROVISIONER_LOG_FORMAT": "json", "PATH": "/usr/bin:/bin"}
    with hostile_server(reflect(500)) as gateway:
        url = gateway.url.replace("http://", f"http://push-user:{PASSWORD}@")
        args = ("apply", "m.yaml", "--simulate", "--pushgateway", url)
        done = run_cli(*args, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert "metrics.push_failed" in done.stderr
    assert PASSWORD not in done.stderr + done.stdout
    assert "push-user" not in done.stderr


@pytest.mark.parametrize(
    ("url", "scrubbed"),
    [
        ("http://u:p@host:9091/x", "http://[redacted]@host:9091/x"),
        ("https://u@host", "https://[redacted]@host"),
        ("http://host:9091", "http://host:9091"),
        ("http://a:b@c@host/", "http://[redacted]@host/"),
    ],
)
def test_scrub_url(url: str, scrubbed: str) -> None:
    assert scrub_url(url) == scrubbed
