"""The Streamkap API client: the only package that knows the API's URLs and JSON shapes.

Every call takes one path: `client` (retry, then the circuit breaker) -> `auth` (a bearer token)
-> `pool` (a connection slot) -> `pacing` (the learnt rate) -> the shared HTTP transport.
"""

from provisioner.streamkap.client import StreamkapClient

__all__ = ["StreamkapClient"]
