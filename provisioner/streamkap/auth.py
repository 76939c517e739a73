"""Bearer tokens for the Streamkap API: log in, refresh ahead of expiry, one refresh at a time."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio
from pydantic import SecretStr

from provisioner.errors import ApiError, AuthError, UsageError
from provisioner.logs import register_secret
from provisioner.streamkap.answers import TokenAnswer

# Refresh when this share of a token's life is left, so long runs never send an expired token.
REFRESH_MARGIN = 0.2

TokenCall = Callable[[str, dict[str, Any]], Awaitable[TokenAnswer]]


@dataclass(frozen=True, slots=True)
class Token:
    value: SecretStr
    refresh: SecretStr | None
    expires_at: float  # monotonic seconds; inf for a token given ready-made
    refresh_at: float


def _no_credential(client_id: str | None, secret: SecretStr | None) -> str:
    """What is missing, by name: one of the pair, or both."""
    if client_id and not secret:
        missing = "STREAMKAP_SECRET is not set (STREAMKAP_CLIENT_ID is)"
    elif secret and not client_id:
        missing = "STREAMKAP_CLIENT_ID is not set (STREAMKAP_SECRET is)"
    else:
        missing = "set STREAMKAP_CLIENT_ID and STREAMKAP_SECRET"
    return f"no API credential: {missing} (or set STREAMKAP_ACCESS_TOKEN)"


class TokenSource:
    """Hands out a valid access token; concurrent callers share one login or refresh."""

    def __init__(
        self,
        call: TokenCall,
        *,
        client_id: str | None,
        secret: SecretStr | None,
        access_token: SecretStr | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if access_token is None and not (client_id and secret):
            raise UsageError(_no_credential(client_id, secret))
        self._call = call
        self._client_id = client_id
        self._secret = secret
        self._clock = clock
        self._lock = anyio.Lock()
        self._token: Token | None = None
        if access_token is not None:
            self._token = Token(access_token, None, float("inf"), float("inf"))
        self.refreshes = 0

    async def get(self) -> SecretStr:
        """A token that is not about to expire."""
        token = self._token
        if token is not None and self._clock() < token.refresh_at:
            return token.value
        async with self._lock:
            token = self._token
            if token is None or self._clock() >= token.refresh_at:
                token = await self._renew(token)
            return token.value

    async def invalidate(self, rejected: SecretStr) -> None:
        """The API refused `rejected` (401): renew it, unless another task already did."""
        async with self._lock:
            current = self._token
            if current is not None and current.value != rejected:
                return
            await self._renew(current)

    async def _renew(self, old: Token | None) -> Token:
        answer = None
        if old is not None and old.refresh is not None:
            body = {"refresh_token": old.refresh.get_secret_value()}
            try:
                answer = await self._call("/auth/access-token/refresh", body)
            except ApiError as exc:
                if exc.status not in {400, 401, 403}:
                    raise
                # The refresh token itself expired: log in again below.
        if answer is None:
            answer = await self._login()
        self._token = self._parse(answer)
        self.refreshes += 1
        return self._token

    async def _login(self) -> TokenAnswer:
        if not (self._client_id and self._secret):
            raise AuthError("POST", "/auth/access-token", 401, "the access token was refused")
        body = {"client_id": self._client_id, "secret": self._secret.get_secret_value()}
        return await self._call("/auth/access-token", body)

    def _parse(self, answer: TokenAnswer) -> Token:
        register_secret(answer.access)  # servers echo headers into their errors
        register_secret(answer.refresh)
        now = self._clock()
        return Token(
            value=answer.access,
            refresh=answer.refresh,
            expires_at=now + answer.lifetime,
            refresh_at=now + answer.lifetime * (1 - REFRESH_MARGIN),
        )
