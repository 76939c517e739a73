"""The seam between the stages and one kind of credential on the API.

The engine and the observer manage credentials only through `CredentialApi`; each kind's adapter
(`client_credentials.ClientCredentials`, `project_key_credentials.ProjectKeyCredentials`) alone
knows its URLs, JSON shapes, permissions and what changes in place; the planner holds the rules.
`StreamkapClient` keeps what every kind shares: the request path, tokens, roles.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from provisioner.model import CreatedCredential, DesiredCredential, RemoteCredential, SinkRecord


class CredentialApi(Protocol):
    """List, create, update, delete and verify the credentials of one kind."""

    async def list(self) -> Sequence[RemoteCredential]:
        """Every credential of the kind, each once; a listing never carries secrets."""
        ...

    async def create(self, desired: DesiredCredential) -> CreatedCredential:
        """Create once: AmbiguousCreate when the outcome is unknown, UnusableCreate when what
        was made must be deleted again, never delivered."""
        ...

    async def update(self, client_id: str, desired: DesiredCredential) -> CreatedCredential | None:
        """Change it in place (its id and secrets kept); PatchUnsupported if the API cannot.

        An access the change adds (a project key given Kafka or API access) comes back with its
        new secrets, shown once: the caller delivers them, or deletes the credential.
        """
        ...

    async def delete(self, client_id: str) -> None:
        """Delete; one already gone counts as deleted."""
        ...

    async def verify(self, record: SinkRecord) -> bool:
        """Whether the API accepts the record's secret (a sink's copy is proven before it is
        restored); False when it holds none the API can check."""
        ...
