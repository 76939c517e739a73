"""moto's Secrets Manager served on loopback (`ThreadedMotoServer`), and how to point AWS at it."""

from __future__ import annotations

import json
import os
import socket
import tempfile
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REGION = "eu-west-1"
ENTRY_POINTS = """[provisioner.sinks]
aws-secretsmanager = provisioner.sinks.aws:SecretsManagerSink
aws-sm = provisioner.sinks.aws:SecretsManagerSink
"""


@dataclass
class ServedAws:
    """moto's server, and the AWS environment the SDK (and the CLI) reads to reach it."""

    url: str

    def env(self, home: Path) -> dict[str, str]:
        """Dummy credentials and this endpoint, exactly as the AWS CLI would read them."""
        return {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": REGION,
            "AWS_CONFIG_FILE": str(home / "aws-config"),  # never the host's profiles
            "AWS_SHARED_CREDENTIALS_FILE": str(home / "aws-credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def boto3(self) -> Any:
        """The official SDK's client, for reading what the sink wrote."""
        import boto3

        return boto3.client(
            "secretsmanager",
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def _post(self, path: str) -> bytes:
        request = urllib.request.Request(f"{self.url}{path}", method="POST", data=b"")  # noqa: S310
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (loopback)
            return bytes(response.read())

    def start_recording(self) -> None:
        self._post("/moto-api/recorder/reset-recording")
        self._post("/moto-api/recorder/start-recording")

    def recorded_actions(self) -> list[str]:
        """The Secrets Manager actions called since `start_recording` (X-Amz-Target)."""
        self._post("/moto-api/recorder/stop-recording")
        url = f"{self.url}/moto-api/recorder/download-recording"
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (loopback)
            lines = response.read().decode().splitlines()
        actions = []
        for line in filter(None, lines):
            entry = json.loads(line)
            target = (entry.get("headers") or {}).get("X-Amz-Target", "")
            actions.append(target.rpartition(".")[2])
        return actions


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def served_aws() -> Iterator[ServedAws]:
    """moto's server mode on a free loopback port, for one test."""
    # The request recorder writes to ./moto_recording unless told otherwise (read at import).
    recording = Path(tempfile.gettempdir()) / f"moto-recording-{os.getpid()}"
    os.environ.setdefault("MOTO_RECORDER_FILEPATH", str(recording))
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    served = ServedAws(f"http://127.0.0.1:{port}")
    # moto keeps its state per process, not per server: start every test from an empty account.
    served._post("/moto-api/reset")
    try:
        yield served
    finally:
        server.stop()


def entry_point_dir(root: Path) -> Path:
    """A directory to put on PYTHONPATH so a subprocess finds the AWS sink types by entry point,
    whether or not the installed metadata of this checkout has them yet."""
    dist = root / "entry-points" / "streamkap_provisioner_aws_sink-0.dist-info"
    dist.mkdir(parents=True, exist_ok=True)
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: streamkap-provisioner-aws-sink\nVersion: 0\n"
    )
    (dist / "entry_points.txt").write_text(ENTRY_POINTS)
    return dist.parent
