"""Issue 14, points 6, 13 and 14: manifests that are endless, too large, or out of range."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from provisioner import yamlload
from provisioner.cli import main
from provisioner.errors import ManifestError
from provisioner.manifest import load_manifests


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


MANIFEST = """\
version: 1
sinks:
  local: {type: file, path: ./secrets}
services:
  - name: api
    credentials:
      - name: c
        roles: [admin]
        sinks: [local]
        %s
"""


@pytest.mark.parametrize("line", ["grace: 3000000d", "rotate_after: 999999999w"])
def test_durations_beyond_ten_years_are_refused_at_validation_with_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], line: str
) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(MANIFEST % line)
    assert main(["validate", str(path)]) == 2
    field = line.split(":")[0]
    assert f"{path}:10: services[0].credentials[0].{field}: duration" in capsys.readouterr().err


def test_ten_years_is_still_accepted(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(MANIFEST % "grace: 3650d")
    assert load_manifests([path]).credentials[0].grace.days == 3650
