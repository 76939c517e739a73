"""Issue 14, points 6, 13 and 14: manifests that are endless, too large, or out of range; issue 23:
limits sized for platforms (10k credentials in ten files pass), set by the environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.workload import write_team_manifests
from provisioner.cli import main
from provisioner.errors import ManifestError
from provisioner.manifest import load_manifests
from provisioner.manifest import yamlfile as yamlload
from tests.support.manifests import one_credential
from tests.support.served import REPO

#: docs/limits.md: what `validate` of 10k credentials needs at most (measured: ~72 MiB).
VALIDATE_10K_MIB = 96


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_a_manifest_symlinked_to_dev_zero_is_refused_after_reading_at_most_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "endless.yaml").symlink_to("/dev/zero")
    read: list[int] = []
    real_open = Path.open

    def counting_open(self: Path, *args: object, **kwargs: object) -> object:
        handle = real_open(self, *args, **kwargs)  # type: ignore[call-overload]
        real_read = handle.read

        def read_some(size: int = -1) -> bytes:
            assert size >= 0, "an unbounded read of a manifest"
            data: bytes = real_read(size)
            read.append(len(data))
            return data

        handle.read = read_some
        return handle

    monkeypatch.setattr(Path, "open", counting_open)
    with pytest.raises(ManifestError, match=r"endless\.yaml: file larger than"):
        load_manifests([tmp_path])
    assert sum(read) <= yamlload.MAX_FILE_BYTES + 1


@pytest.mark.parametrize("line", ["grace: 3000000d", "rotate_after: 999999999w"])
def test_durations_beyond_ten_years_are_refused_at_validation_with_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], line: str
) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(one_credential(line))
    assert main(["validate", str(path)]) == 2
    field = line.split(":")[0]
    assert f"{path}:10: services[api].credentials[c].{field}: duration" in capsys.readouterr().err


def test_ten_years_is_still_accepted(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(one_credential("grace: 3650d"))
    assert load_manifests([path]).credentials[0].grace.days == 3650


def dense_manifest(count: int) -> str:
    """The densest manifests there are: short names, every field inherited."""
    head = "version: 1\ndefaults:\n  roles: [admin]\n  sinks: [local]\n"
    head += "sinks:\n  local: {type: file, path: ./secrets}\nservices:\n"
    service = "  - name: s{}\n    credentials:\n      - name: c\n"
    return head + "".join(service.format(i) for i in range(count))


def test_a_manifest_over_the_per_file_cap_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(dense_manifest(100_000))
    assert path.stat().st_size > yamlload.MAX_FILE_BYTES
    with pytest.raises(ManifestError, match=r"m\.yaml: file larger than 4 MiB"):
        load_manifests([path])


def test_the_per_file_cap_is_set_by_the_environment_and_named_when_hit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(dense_manifest(20_000))
    assert 512 * 1024 < path.stat().st_size < yamlload.MAX_FILE_BYTES
    monkeypatch.setenv("PROVISIONER_MAX_MANIFEST_FILE_BYTES", "512KiB")
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: file larger than 512 KiB (PROVISIONER_MAX_MANIFEST_FILE_BYTES" in err


def test_manifests_over_the_run_cap_together_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("a", "b"):
        text = dense_manifest(7_000).replace("name: s", f"name: {name}")
        (tmp_path / f"{name}.yaml").write_text(text)
        assert len(text) < 512 * 1024 < 2 * len(text)
    monkeypatch.setenv("provisioner_max_manifest_run_bytes", "524288")  # any case, as Settings
    assert main(["validate", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "b.yaml: the manifests together are larger than 512 KiB" in err
    assert "a.yaml" not in err


def test_a_cap_that_is_not_a_size_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(one_credential())
    monkeypatch.setenv("PROVISIONER_MAX_MANIFEST_FILE_BYTES", "lots")
    assert main(["validate", str(path)]) == 2
    assert "invalid configuration: PROVISIONER_MAX_MANIFEST_FILE_BYTES" in capsys.readouterr().err


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads VmHWM (Linux)")
def test_ten_files_of_10k_credentials_validate_within_the_documented_memory(
    tmp_path: Path,
) -> None:
    """10k credentials as people write them, in ten team files: the default limits admit them,
    and validating them takes less than docs/limits.md says a run needs per 10k."""
    paths = write_team_manifests(tmp_path / "teams", 10_000, 10)
    assert sum(path.stat().st_size for path in paths) > 10_000 * 150
    # VmHWM, not ru_maxrss: the latter survives exec, so it would report the test runner's peak.
    code = (
        "import sys\n"
        "from provisioner.cli import main\n"
        "assert main(['validate', sys.argv[1]]) == 0\n"
        "status = open('/proc/self/status').read()\n"
        "print(int(status.split('VmHWM:')[1].split()[0]) // 1024)\n"
    )
    # A clean environment: the measure is of the provisioner, not of what the test runner set.
    env = {"PYTHONPATH": str(REPO), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "teams")], env=env, capture_output=True
    )
    assert done.returncode == 0, done.stderr.decode()
    assert "OK: 10000 credentials for 2000 services in 10 files" in done.stderr.decode()
    peak_mib = int(done.stdout.decode().split()[-1])
    assert peak_mib < VALIDATE_10K_MIB, f"validating 10k credentials took {peak_mib} MiB"
