"""The provisioner's exceptions, one shallow tree; the CLI maps it to exit codes in one place.

    ProvisionerError
    ├── UsageError            bad flags or configuration                  (exit 2)
    ├── ManifestError         invalid manifests, every problem at once     (exit 2)
    ├── ApiError              a non-2xx answer from the Streamkap API
    │   ├── AuthError         401/403 after one token refresh
    │   └── RateLimited       429 (carries Retry-After)
    ├── RequestFailed         the request got no usable answer (connect, read, timeout)
    ├── CircuitOpen           so many calls failed in a row that the run stops calling
    ├── AmbiguousCreate       a create whose outcome is unknown
    ├── SinkError             a sink could not read, write or delete
    ├── LockTimeout           another run held a sink's lock for too long
    └── LockUnavailable       a sink's lock file cannot be opened

Messages are built from ids, keys and the API's `detail`; since a server may echo what it was
sent into that detail, every message is passed through the secret registry when rendered.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from typing import Any

from provisioner.logs import redact


class ProvisionerError(Exception):
    """Base of every error the provisioner raises on purpose."""

    def __str__(self) -> str:
        # Rendered late, so a secret registered after the error was made is still replaced.
        return redact(super().__str__())


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`; did you mean 'x'?` for the closest of `choices`, or "" when none is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


class UsageError(ProvisionerError):
    """Bad command-line usage or configuration."""


class ManifestError(ProvisionerError):
    """Manifests failed validation; `problems` holds every `file:line: field: message`.

    `hints` (such as the known roles) help fix the problems but are not problems themselves.
    """

    def __init__(self, problems: Sequence[str], hints: Sequence[str] = ()) -> None:
        self.problems = tuple(problems)
        self.hints = tuple(hints)
        super().__init__("\n".join((*self.problems, *self.hints)))


class ApiError(ProvisionerError):
    """The Streamkap API answered with a non-2xx status."""

    def __init__(self, method: str, path: str, status: int, detail: Any = None) -> None:
        self.method = method
        self.path = path
        self.status = status
        self.detail = detail
        super().__init__(f"{method} {path}: HTTP {status}: {format_detail(detail)}")

    @property
    def field_errors(self) -> list[str]:
        """A 422's validation errors as `field: message` lines."""
        if not isinstance(self.detail, list):
            return []
        return [_format_validation_error(item) for item in self.detail if isinstance(item, dict)]


class AuthError(ApiError):
    """Authentication failed even after refreshing the token."""


class RateLimited(ApiError):
    """HTTP 429; `retry_after` is the server's hint in seconds, if any."""

    def __init__(
        self, method: str, path: str, status: int, detail: Any, retry_after: float | None
    ) -> None:
        super().__init__(method, path, status, detail)
        self.retry_after = retry_after


class RequestFailed(ProvisionerError):
    """The request failed below HTTP (connect, read, timeout, protocol)."""

    def __init__(
        self, method: str, path: str, cause: str, *, sent: bool, retryable: bool = True
    ) -> None:
        self.method = method
        self.path = path
        self.sent = sent  # False only when the request surely never reached the server
        self.retryable = retryable  # False when asking again would get the same (e.g. too large)
        super().__init__(f"{method} {path}: {cause}")


class CircuitOpen(ProvisionerError):
    """The API looks down: calls fail fast instead of each backing off on its own."""


class AmbiguousCreate(ProvisionerError):
    """A create may or may not have happened (timeout, dropped connection, 5xx)."""

    def __init__(self, key: str, cause: Exception) -> None:
        self.key = key
        super().__init__(f"create of {key} has an unknown outcome: {cause}")


class SinkError(ProvisionerError):
    """A sink failed to read, write or delete."""

    def __init__(
        self,
        sink: str,
        message: str,
        *,
        retryable: bool = False,
        retry_after: float | None = None,
    ) -> None:
        self.sink = sink
        self.retryable = retryable
        self.retry_after = retry_after  # the sink's own hint (e.g. Vault's 429), in seconds
        super().__init__(f"sink {sink!r}: {message}")


def format_detail(detail: Any) -> str:
    """Render the API's `detail` (a string or a 422 list) on one line."""
    if isinstance(detail, list):
        items = [_format_validation_error(d) if isinstance(d, dict) else str(d) for d in detail]
        return "; ".join(items)
    if detail is None:
        return "no detail"
    return str(detail)


def _format_validation_error(item: dict[str, Any]) -> str:
    loc = item.get("loc") or []
    field = ".".join(str(part) for part in loc if part != "body") or "body"
    return f"{field}: {item.get('msg', 'invalid')}"


class LockTimeout(ProvisionerError):
    """Another run held a sink's lock for longer than we were willing to wait."""


class LockUnavailable(ProvisionerError):
    """A sink's lock file cannot be opened: without it two runs could both create everything."""


def first_error(exc: BaseException) -> BaseException:
    """The error a task group's failure stands for: the first one inside its (nested) groups.

    The one place exception groups are unwrapped: concurrent reads that fail together (every
    call to an API that is down) are reported as the first failure, not as a group.
    """
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    return exc
