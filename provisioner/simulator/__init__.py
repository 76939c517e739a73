"""Faithful fakes of the Streamkap API and of Vault's KV v2 engine (ASGI), with fault injection.

    state = SimulatorState(faults=FaultConfig(error_rate=0.1))
    app = create_app(state)               # in-process: httpx.ASGITransport(app)
    with serve_in_thread(app) as url:     # over a real socket
        ...
    vault = create_vault_app(VaultState())  # the Vault stub, served the same ways

A dropped connection surfaces as `SimulatedConnectionDrop` in-process and as
`httpx.RemoteProtocolError` over a socket; the first subclasses the second.
"""

from provisioner.simulator.app import ClientCredentialCreateReq, create_app, get_state
from provisioner.simulator.faults import Call, FaultConfig, SimulatedConnectionDrop
from provisioner.simulator.saved import load as load_saved
from provisioner.simulator.saved import save as save_state
from provisioner.simulator.serve import serve_forever, serve_in_thread
from provisioner.simulator.state import (
    ADMIN_CLIENT_ID,
    ADMIN_SECRET,
    DEFAULT_ROLES,
    NO_RESPONSE,
    CredentialRecord,
    ManualClock,
    Role,
    SimulatorState,
)
from provisioner.simulator.vault import create_vault_app, vault_state
from provisioner.simulator.vault_state import CAS_MISMATCH, VAULT_ROOT_TOKEN, VaultState

__all__ = [
    "ADMIN_CLIENT_ID",
    "ADMIN_SECRET",
    "CAS_MISMATCH",
    "DEFAULT_ROLES",
    "NO_RESPONSE",
    "VAULT_ROOT_TOKEN",
    "Call",
    "ClientCredentialCreateReq",
    "CredentialRecord",
    "FaultConfig",
    "ManualClock",
    "Role",
    "SimulatedConnectionDrop",
    "SimulatorState",
    "VaultState",
    "create_app",
    "create_vault_app",
    "get_state",
    "load_saved",
    "save_state",
    "serve_forever",
    "serve_in_thread",
    "vault_state",
]
