"""Issue 14, points 6, 13 and 14: manifests that are endless, too large, or out of range."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from provisioner import yamlload
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
