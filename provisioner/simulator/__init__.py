"""Faithful fakes of the Streamkap API, Vault's KV v2 engine and Kubernetes Secrets (ASGI).

    state = SimulatorState(faults=FaultConfig(error_rate=0.1))
    app = create_app(state)               # in-process: httpx.ASGITransport(app)
    with serve_in_thread(app) as url:     # over a real socket
        ...
    vault = create_vault_app(VaultState())  # the Vault stub, served the same ways
    kube = create_kube_app(KubeState())     # the Kubernetes Secrets stub; kubeconfig(url)

The API behaves as Streamkap documents it (see `app.py`); what a test may change is a plain
attribute of `SimulatorState` (`fill_service_id`, `patch_supported`, `admin_permissions`, ...)
or a `FaultConfig` option (`bad_create_answer`, `bad_list_answer`, ...). `/project-keys` lives in
`state.project_keys` (a `ProjectKeyStore`: `activation_delay`, `deletion_delay`, `use`).

A dropped connection surfaces as `SimulatedConnectionDrop` in-process and as
`httpx.RemoteProtocolError` over a socket; the first subclasses the second.
"""

from provisioner.simulator.app import (
    ClientCredentialCreateReq,
    ClientCredentialUpdateReq,
    create_app,
)
from provisioner.simulator.faults import (
    BadCreateAnswer,
    BadListAnswer,
    BadRolesAnswer,
    BadTokenAnswer,
    Call,
    FaultConfig,
    SimulatedConnectionDrop,
)
from provisioner.simulator.kubernetes import (
    KUBE_TOKEN,
    KubeState,
    create_kube_app,
    kube_state,
    kubeconfig,
)
from provisioner.simulator.project_keys_state import ProjectKeyRecord, ProjectKeyStore
from provisioner.simulator.routing import get_state, mask_secret
from provisioner.simulator.saved import load as load_saved
from provisioner.simulator.saved import save as save_state
from provisioner.simulator.serve import serve_forever, serve_in_thread
from provisioner.simulator.state import (
    ADMIN_CLIENT_ID,
    ADMIN_SECRET,
    ALL_PERMISSIONS,
    DEFAULT_ROLES,
    DELETE_CREDENTIALS,
    DELETE_PROJECT_KEYS,
    EXTRA_ROLE_ID,
    NO_RESPONSE,
    READ_CREDENTIALS,
    READ_PROJECT_KEYS,
    READ_ROLES,
    SERVICE_ID,
    WRITE_CREDENTIALS,
    WRITE_PROJECT_KEYS,
    CreatedBy,
    CredentialRecord,
    ManualClock,
    Role,
    SimulatorState,
)
from provisioner.simulator.vault import create_vault_app, vault_state
from provisioner.simulator.vault_state import (
    CAS_MISMATCH,
    VAULT_ROOT_TOKEN,
    AuthMethod,
    Grant,
    TokenInfo,
    VaultState,
)

__all__ = [
    "ADMIN_CLIENT_ID",
    "ADMIN_SECRET",
    "ALL_PERMISSIONS",
    "CAS_MISMATCH",
    "DEFAULT_ROLES",
    "DELETE_CREDENTIALS",
    "DELETE_PROJECT_KEYS",
    "EXTRA_ROLE_ID",
    "KUBE_TOKEN",
    "NO_RESPONSE",
    "READ_CREDENTIALS",
    "READ_PROJECT_KEYS",
    "READ_ROLES",
    "SERVICE_ID",
    "VAULT_ROOT_TOKEN",
    "WRITE_CREDENTIALS",
    "WRITE_PROJECT_KEYS",
    "AuthMethod",
    "BadCreateAnswer",
    "BadListAnswer",
    "BadRolesAnswer",
    "BadTokenAnswer",
    "Call",
    "ClientCredentialCreateReq",
    "ClientCredentialUpdateReq",
    "CreatedBy",
    "CredentialRecord",
    "FaultConfig",
    "Grant",
    "KubeState",
    "ManualClock",
    "ProjectKeyRecord",
    "ProjectKeyStore",
    "Role",
    "SimulatedConnectionDrop",
    "SimulatorState",
    "TokenInfo",
    "VaultState",
    "create_app",
    "create_kube_app",
    "create_vault_app",
    "get_state",
    "kube_state",
    "kubeconfig",
    "load_saved",
    "mask_secret",
    "save_state",
    "serve_forever",
    "serve_in_thread",
    "vault_state",
]
