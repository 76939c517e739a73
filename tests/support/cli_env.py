"""The environment that points a provisioner subprocess at a served API: the caller's, minus
its own provisioner settings, plus the API's address and login. Imports nothing of the tool, so
the independent fake can use it too."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def cli_env(url: str, client_id: str, secret: str, **extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("STREAMKAP_", "PROVISIONER_", "VAULT_"))
    }
    env.update(
        STREAMKAP_HOST=url,
        STREAMKAP_CLIENT_ID=client_id,
        STREAMKAP_SECRET=secret,
        PROVISIONER_LOG_FORMAT="json",
    )
    # The subprocess imports the provisioner of this checkout, wherever it was installed from.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env.update(extra)
    return env
