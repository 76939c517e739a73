"""Run the CLI with its stderr on a pseudo-terminal, as a person at a console sees it."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path


def stderr_on_a_pty(args: list[str], cwd: Path, env: Mapping[str, str]) -> str:
    """`python -m provisioner ARGS` with stderr on a pty; what it wrote there (exit 0 asserted)."""
    main, secondary = pty.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "provisioner", *args],
            cwd=cwd, env=dict(env), stdout=subprocess.DEVNULL, stderr=secondary,
        )  # fmt: skip
        os.close(secondary)
        chunks = []
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # EIO: the other end is closed
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert process.wait(timeout=60) == 0
    finally:
        os.close(main)
    return b"".join(chunks).decode()
