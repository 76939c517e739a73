"""The seam between the stages and one kind of credential on the API.

The engine and the observer manage credentials only through `CredentialApi`; its adapter (today
`client_credentials.ClientCredentials`) alone knows the kind's URLs, JSON shapes, permissions and
whether it changes in place. A second kind is a second adapter here, plus its rules in the
planner. `StreamkapClient` keeps what every kind shares: the request path, tokens, roles.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from pydantic import SecretStr

from provisioner.model import CreatedCredential, DesiredCredential, RemoteCredential


class CredentialApi(Protocol):
    """List, create, update, delete and verify the credentials of one kind."""

    async def list(self) -> Sequence[RemoteCredential]:
        """Every credential of the kind, each once; a listing never carries secrets."""
        ...

    async def create(self, desired: DesiredCredential) -> CreatedCredential:
        """Create once: AmbiguousCreate when the outcome is unknown, UnusableCreate when what
        was made must be deleted again, never delivered."""
        ...

    async def update(self, client_id: str, desired: DesiredCredential) -> None:
        """Change it in place (its id and secret kept); PatchUnsupported if the API cannot."""
        ...

    async def delete(self, client_id: str) -> None:
        """Delete; one already gone counts as deleted."""
        ...

    async def verify(self, client_id: str, secret: SecretStr) -> bool:
        """Whether the API accepts this secret (a sink's copy is proven before it is restored)."""
        ...
