"""aiobotocore's HTTP session, held to the HTTP stack's limits: one deadline, one answer cap.

aiobotocore times each socket read on its own, so a server dripping its answer holds a call for
as long as it likes, and it reads an answer to its end, so an endless one fills memory (2.9 GB
in 4.6 s). This session gives every request the whole-exchange deadline the API client has
(the longest of the SDK's timeouts: PROVISIONER_TIMEOUT) and reads answers as the transport
does (`read_capped`: stops past `MAX_ANSWER_BYTES`, `AnswerTooLarge`). Imported only when an
`aws-secretsmanager` sink opens: the SDK is an optional extra.
"""

from __future__ import annotations

from typing import Any

import aiohttp
from aiobotocore.httpsession import AIOHTTPSession
from botocore.exceptions import ConnectionClosedError, ReadTimeoutError

from provisioner.http.transport import MAX_ANSWER_BYTES, AnswerTooLarge, read_capped


class CappedSession(AIOHTTPSession):  # type: ignore[misc]  # untyped base
    """AIOHTTPSession with a total deadline per request and a cap on every answer."""

    _timeout: aiohttp.ClientTimeout  # the base's session-wide timeouts

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        phases = self._timeout
        given = [t for t in (phases.sock_connect, phases.sock_read) if t is not None]
        # `total` spans the whole exchange, body included: a per-read timeout restarts with
        # every byte of a dripping answer.
        self._timeout = aiohttp.ClientTimeout(
            total=max(given) if given else None,
            sock_connect=phases.sock_connect,
            sock_read=phases.sock_read,
        )

    def _get_request_timeout(self, request: Any) -> None:
        """Always the session's deadline: an override of the read timeout alone has no total."""
        return

    async def send(self, request: Any) -> Any:
        streamed = request.stream_output
        request.stream_output = True  # aiobotocore leaves the body unread: it is read below
        try:
            response = await super().send(request)
        finally:
            request.stream_output = streamed
        if streamed:
            return response
        raw: aiohttp.ClientResponse = response.raw
        try:
            response._content = await read_capped(raw, MAX_ANSWER_BYTES)
        except AnswerTooLarge:
            raw.close()  # the rest is never read: the connection goes, not back to the pool
            raise
        except TimeoutError as exc:
            raw.close()
            raise ReadTimeoutError(endpoint_url=request.url, error=exc) from None
        except aiohttp.ClientError as exc:
            raw.close()
            raise ConnectionClosedError(
                endpoint_url=request.url, request=request, error=exc
            ) from None
        return response
