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


#: Two credentials whose mapped dotenv variables collide: orders/cdc's SERVICE_ID and
#: orders/cdc-service's ID are both STREAMKAP_ORDERS_CDC_SERVICE_ID (issue 21, item 5).
ORDERS = """\
version: 1
defaults: {roles: [Admin], sinks: [dotenv]}
sinks:
  dotenv:
    type: env
    path: ./orders.env
    fields: {ID: client_id, SECRET: secret, SERVICE_ID: service_id}
services:
  - name: orders
    service_id: svc-1
    credentials:
      - name: cdc
      - name: cdc-service
"""


def one_credential(*extra: str) -> str:
    """The smallest manifest that does something: `api/c` in one file sink, `./secrets`.

    Each of `extra` is a further setting of the credential, on lines 10, 11 and on.
    """
    return _ONE_CREDENTIAL + "".join(f"        {line}\n" for line in extra)
