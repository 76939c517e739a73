"""What the request path to one Streamkap API is built from: a frozen value, read once."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import SecretStr

from provisioner.config import Settings


@dataclass(frozen=True, slots=True)
class ApiConfig:
    """Where the API is, the credential the provisioner logs in with, and how hard to push it."""

    base_url: str
    client_id: str | None = None
    secret: SecretStr | None = None
    access_token: SecretStr | None = None  # a ready bearer token instead of the two above
    concurrency: int = 16
    max_attempts: int = 6
    timeout: float = 30.0
    activation_timeout: float = 300.0  # seconds a new project key may stay `creating`

    @classmethod
    def from_settings(cls, settings: Settings) -> ApiConfig:
        return cls(
            settings.host,
            client_id=settings.client_id,
            secret=settings.secret,
            access_token=settings.access_token,
            concurrency=settings.concurrency,
            max_attempts=settings.max_attempts,
            timeout=settings.timeout,
            activation_timeout=settings.activation_timeout,
        )
