"""The Streamkap API client: one request path, the roles, and each kind of credential's API.

Built over a `Requests` (the one request path: retry, breaker, tokens, pool, pacing), as httpx's
`Client` takes a transport; `credentials` is the client credentials' `CredentialApi`,
`project_key_credentials` the project keys' (over `project_keys`, the adapter of `/project-keys`);
`credential_api(kind)` is the one of a kind.
"""

from __future__ import annotations

from provisioner.model import CredentialKind, Role
from provisioner.streamkap import answers
from provisioner.streamkap.client_credentials import ClientCredentials
from provisioner.streamkap.credentials import CredentialApi
from provisioner.streamkap.project_key_credentials import ProjectKeyCredentials
from provisioner.streamkap.project_keys import ProjectKeys
from provisioner.streamkap.requests import Call, Requests

ROLES = "/auth/roles"
READ_ROLES = "fe.secure.read.roles"  # named by Streamkap's Terraform provider


class StreamkapClient:
    """The calls the provisioner makes, over one request path that every call shares."""

    def __init__(self, requests: Requests) -> None:
        #: What the run's observers read: `statuses` as calls are made, `tokens`, `pacer` and
        #: `breaker` as they learn.
        self.requests = requests
        self.credentials = ClientCredentials(requests)
        self.project_keys = ProjectKeys(requests)
        self.project_key_credentials = ProjectKeyCredentials(
            requests, self.project_keys, activation_timeout=requests.config.activation_timeout
        )

    async def __aenter__(self) -> StreamkapClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.requests.aclose()

    def credential_api(self, kind: CredentialKind) -> CredentialApi:
        """The `CredentialApi` of one kind of credential."""
        if kind is CredentialKind.PROJECT_KEY:
            return self.project_key_credentials
        return self.credentials

    async def list_roles(self) -> list[Role]:
        body = await self.requests.call(Call("GET", ROLES, needs=READ_ROLES))
        return answers.parsed("GET", ROLES, answers.parse_roles, body)
