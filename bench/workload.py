"""The credentials a scenario provisions, as a manifest and as the names the naive script uses."""

from __future__ import annotations

from pathlib import Path

PER_SERVICE = 10
ROLE_KEY = "Read Only"
ROLE_ID = "role-read-only"
SINK_DIR = "secrets"


def names(count: int) -> list[tuple[str, str]]:
    """`count` (service, credential) pairs, ten credentials per service."""
    return [(f"svc-{i // PER_SERVICE:05d}", f"cred-{i % PER_SERVICE}") for i in range(count)]


def manifest_text(count: int, sink_dir: str = SINK_DIR) -> str:
    """One manifest asking for `count` credentials, all delivered to one file sink."""
    lines = [
        "version: 1",
        "defaults:",
        f"  roles: [{ROLE_KEY}]",
        "  sinks: [local]",
        "sinks:",
        f"  local: {{type: file, path: {sink_dir}}}",
        "services:",
    ]
    service = None
    for svc, cred in names(count):
        if svc != service:
            lines += [f"  - name: {svc}", "    credentials:"]
            service = svc
        lines += [f"      - name: {cred}", f"        description: Benchmark {svc} {cred}"]
    return "\n".join(lines) + "\n"


def write_manifest(directory: Path, count: int) -> Path:
    path = directory / "bench.yaml"
    path.write_text(manifest_text(count), encoding="utf-8")
    return path
