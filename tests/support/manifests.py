"""Manifest texts shared by the end-to-end tests."""

from __future__ import annotations

_ONE_CREDENTIAL = """\
version: 1
sinks:
  local: {type: file, path: ./secrets}
services:
  - name: api
    credentials:
      - name: c
        roles: [admin]
        sinks: [local]
"""


def one_credential(*extra: str) -> str:
    """The smallest manifest that does something: `api/c` in one file sink, `./secrets`.

    Each of `extra` is a further setting of the credential, on lines 10, 11 and on.
    """
    return _ONE_CREDENTIAL + "".join(f"        {line}\n" for line in extra)
