"""What a shell makes of the files the provisioner writes."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


def bash_value(path: Path, name: str) -> str:
    """What bash sees for `name` after `set -a; . FILE`."""
    script = f'set -a; . "$1"; printf %s "${name}"'
    done = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", script, "bash", str(path)],
        capture_output=True,
        check=True,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
    )
    return done.stdout.decode()
