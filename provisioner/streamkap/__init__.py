"""The Streamkap API client: the only package that knows the API's URLs and JSON shapes.

Every call takes one path: `requests` (retry, the circuit breaker, one renewal on a 401) ->
`pool` (a connection slot) -> `pacing` (the learnt rate) -> `auth` (a bearer token, taken last)
-> the shared HTTP transport.
`client.StreamkapClient` is built over it; each kind of credential is a `CredentialApi`
(`credentials`): `client_credentials`, and `project_key_credentials` over `project_keys`, the
adapter of `/project-keys` (Project Keys: API access, Kafka access and MCP scoping in one
credential).
"""

from provisioner.streamkap.client import StreamkapClient
from provisioner.streamkap.config import ApiConfig
from provisioner.streamkap.credentials import CredentialApi
from provisioner.streamkap.requests import Requests

__all__ = ["ApiConfig", "CredentialApi", "Requests", "StreamkapClient"]
