"""A faithful fake of the Streamkap API (ASGI) with fault injection: for tests, demos, benchmarks.

    state = SimulatorState(faults=FaultConfig(error_rate=0.1))
    app = create_app(state)               # in-process: httpx.ASGITransport(app)
    with serve_in_thread(app) as url:     # over a real socket
        ...

A dropped connection surfaces as `SimulatedConnectionDrop` in-process and as
`httpx.RemoteProtocolError` over a socket; the first subclasses the second.
"""

from provisioner.simulator.app import ClientCredentialCreateReq, create_app, get_state
from provisioner.simulator.faults import FaultConfig, SimulatedConnectionDrop
from provisioner.simulator.serve import serve_forever, serve_in_thread
from provisioner.simulator.state import (
    ADMIN_CLIENT_ID,
    ADMIN_SECRET,
    DEFAULT_ROLES,
    NO_RESPONSE,
    Call,
    CredentialRecord,
    ManualClock,
    Role,
    SimulatorState,
)

__all__ = [
    "ADMIN_CLIENT_ID",
    "ADMIN_SECRET",
    "DEFAULT_ROLES",
    "NO_RESPONSE",
    "Call",
    "ClientCredentialCreateReq",
    "CredentialRecord",
    "FaultConfig",
    "ManualClock",
    "Role",
    "SimulatedConnectionDrop",
    "SimulatorState",
    "create_app",
    "get_state",
    "serve_forever",
    "serve_in_thread",
]
