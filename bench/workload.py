"""The credentials a scenario provisions, as manifests and as the names the naive script uses."""

from __future__ import annotations

from pathlib import Path

PER_SERVICE = 10
ROLE_KEY = "Read Only"
ROLE_ID = "role-read-only"
SINK_DIR = "secrets"


def names(count: int) -> list[tuple[str, str]]:
    """`count` (service, credential) pairs, ten credentials per service."""
    return [(f"svc-{i // PER_SERVICE:05d}", f"cred-{i % PER_SERVICE}") for i in range(count)]


def description(service: str, credential: str) -> str:
    return f"Benchmark {service} {credential}, the orders export read nightly"


def manifest_text(pairs: list[tuple[str, str]], sink_dir: str = SINK_DIR) -> str:
    """One manifest asking for `pairs`, written as teams write them (~150 bytes a credential:
    each names its description, roles and sinks), all delivered to one file sink."""
    lines = [
        "version: 1",
        "sinks:",
        f"  local: {{type: file, path: {sink_dir}}}",
        "services:",
    ]
    service = None
    for svc, cred in pairs:
        if svc != service:
            lines += [f"  - name: {svc}", "    credentials:"]
            service = svc
        lines += [
            f"      - name: {cred}",
            f"        description: {description(svc, cred)}",
            f"        roles: [{ROLE_KEY}]",
            "        sinks: [local]",
        ]
    return "\n".join(lines) + "\n"


def write_manifests(directory: Path, count: int, files: int = 1) -> Path:
    """`count` credentials in `files` manifest files of a directory of their own; returns it."""
    folder = directory / "manifests"
    folder.mkdir()
    pairs = names(count)
    per_file = -(-count // files)
    for index in range(files):
        part = pairs[index * per_file : (index + 1) * per_file]
        (folder / f"team-{index:03d}.yaml").write_text(manifest_text(part), encoding="utf-8")
    return folder


def team_manifest_text(team: int, count: int, sink_dir: str = SINK_DIR) -> str:
    """One team's manifest, `count` credentials written as people write them (~150 bytes each:
    a description, roles and sinks per credential), five credentials per service."""
    lines = ["version: 1", "sinks:", f"  local: {{type: file, path: {sink_dir}}}", "services:"]
    for index in range(count):
        service = f"team{team:03d}-svc-{index // 5:05d}"
        if index % 5 == 0:
            lines += [f"  - name: {service}", "    credentials:"]
        lines += [
            f"      - name: ingest-{index % 5}",
            f"        description: Ingest pipeline of {service} (platform team)",
            f"        roles: [{ROLE_KEY}]",
            "        sinks: [local]",
        ]
    return "\n".join(lines) + "\n"


def write_team_manifests(directory: Path, count: int, files: int) -> list[Path]:
    """`count` credentials in `files` team manifests of equal size, in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for team in range(files):
        path = directory / f"team-{team:03d}.yaml"
        path.write_text(team_manifest_text(team, count // files), encoding="utf-8")
        paths.append(path)
    return paths


def project_key_manifest_text(count: int, sink_dir: str = SINK_DIR) -> str:
    """One manifest asking for `count` project keys, ten per service, all with Kafka access and
    its ACLs: every other key also has API access (`roles`), the rest are Kafka-only."""
    lines = ["version: 1", "sinks:", f"  local: {{type: file, path: {sink_dir}}}", "services:"]
    for index, (service, credential) in enumerate(names(count)):
        if index % PER_SERVICE == 0:
            lines += [f"  - name: {service}", "    credentials:"]
        lines += [
            f"      - name: {credential}",
            "        kind: project-key",
            f"        description: {description(service, credential)}",
        ]
        if index % 2 == 0:
            lines.append(f"        roles: [{ROLE_KEY}]")
        lines += [
            "        kafka:",
            "          acls:",
            f"            - {{topic: {service}.orders., pattern: prefixed, operations: [READ]}}",
            f"            - {{group: {service}-{credential}, operations: [READ, DESCRIBE]}}",
            "        sinks: [local]",
        ]
    return "\n".join(lines) + "\n"
