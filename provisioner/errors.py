"""The provisioner's exceptions, one shallow tree; the CLI maps it to exit codes in one place.

    ProvisionerError
    ├── UsageError            bad flags or configuration                  (exit 2)
    │   └── WrongHost         STREAMKAP_HOST answers, but not as Streamkap's API
    ├── ManifestError         invalid manifests, every problem at once     (exit 2)
    ├── ApiError              a non-2xx answer from the Streamkap API
    │   ├── AuthError         401/403 after one token refresh               (exit 2)
    │   │   └── PermissionDenied  403: the provisioner's own credential lacks a permission
    │   ├── RateLimited       429 (carries Retry-After)
    │   ├── PatchUnsupported  the API cannot change a credential in place (404/405/501)
    │   └── KafkaUsernameTaken  409: a project key's Kafka username is in use in the tenant
    ├── UnusableAnswer        a 2xx answer that is not what Streamkap documents
    ├── RequestFailed         the request got no usable answer (connect, read, timeout)
    ├── CircuitOpen           so many calls failed in a row that the run stops calling
    ├── AmbiguousCreate       a create whose outcome is unknown
    ├── UnusableCreate        a create made a credential that must not be used (deleted again)
    ├── ProjectKeyBusy        a project key that cannot be changed now (creating, deleting, ...)
    ├── SinkError             a sink could not read, write or delete
    │   └── Unreachable       (sinks._scaffold) a remote store that cannot be reached at all
    ├── Stopped               a retry not made, or a backoff cut short: the run is stopping
    ├── BudgetExceeded        the plan changes more than --max-changes allows (exit 2)
    ├── LockTimeout           another run held a sink's lock for too long
    └── LockUnavailable       a sink's lock file cannot be opened

Messages are built from ids, keys and the API's `detail`; since a server may echo what it was
sent into that detail, every message is passed through the secret registry when rendered, and
an echoed text is shortened only by `logs.cut` (redacted first, then cut). An `ApiError` keeps
its detail whole and cuts it when rendered, so a secret registered later is still caught.
"""

from __future__ import annotations

import difflib
import email.utils
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from provisioner.logs import cut, redact

#: How much of the API's `detail` an error shows: a 422's list of a few fields fits.
DETAIL_CHARS = 1000


class ProvisionerError(Exception):
    """Base of every error the provisioner raises on purpose."""

    def __str__(self) -> str:
        # Rendered late, so a secret registered after the error was made is still replaced.
        return redact(super().__str__())

    def __repr__(self) -> str:  # the default shows `args`, unredacted
        return f"{type(self).__name__}({str(self)!r})"


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`; did you mean 'x'?` for the closest of `choices`, or "" when none is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


class UsageError(ProvisionerError):
    """Bad command-line usage or configuration."""


class ManifestError(ProvisionerError):
    """Manifests failed validation; `problems` holds every `file:line: field: message`."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(self.problems))


class ApiError(ProvisionerError):
    """The Streamkap API answered with a non-2xx status."""

    def __init__(self, method: str, path: str, status: int, detail: Any = None) -> None:
        self.method = method
        self.path = path
        self.status = status
        self.detail = detail  # whole: cut only when rendered (see the module's docstring)
        super().__init__(method, path, status)

    def __str__(self) -> str:
        detail = cut(format_detail(self.detail), DETAIL_CHARS)
        return f"{self.method} {self.path}: HTTP {self.status}: {detail}"

    @property
    def field_errors(self) -> list[str]:
        """A 422's validation errors as `field: message` lines."""
        if not isinstance(self.detail, list):
            return []
        return [_format_validation_error(item) for item in self.detail if isinstance(item, dict)]


class AuthError(ApiError):
    """Authentication failed even after refreshing the token."""


class PermissionDenied(AuthError):
    """HTTP 403: the call is refused for the provisioner's own credential; asking again won't do."""

    def __init__(self, method: str, path: str, status: int, detail: Any, needs: str) -> None:
        super().__init__(method, path, status, detail)
        self.needs = needs

    def __str__(self) -> str:
        return (
            f"{super().__str__()}; the provisioner's own credential (STREAMKAP_CLIENT_ID) "
            f"probably lacks the {self.needs} permission: give it a role that has it"
        )


class PatchUnsupported(ApiError):
    """The API has no PATCH for client credentials (404, 405 or 501): replace instead."""


class KafkaUsernameTaken(ApiError):
    """HTTP 409 on a project key: the Kafka username asked for is taken in the tenant."""

    def __str__(self) -> str:
        # The username is not named: it is kept out of every message, as the password is.
        return (
            f"{super().__str__()}; the Kafka username asked for is already taken in this tenant "
            "(by another project key, or by an earlier create of this one)"
        )


class WrongHost(UsageError):
    """The host answers, but not as the Streamkap API does: the wrong STREAMKAP_HOST."""


class UnusableAnswer(ProvisionerError):
    """A successful answer that is not the shape Streamkap documents."""

    def __init__(self, method: str, path: str, problem: str) -> None:
        self.method = method
        self.path = path
        super().__init__(f"{method} {path}: the API's answer is not usable: {problem}")


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


class Stopped(ProvisionerError):
    """A retry was not made: the run is stopping (a signal, a refused permission, the breaker)."""


class CircuitOpen(ProvisionerError):
    """The API looks down: calls fail fast instead of each backing off on its own."""


class AmbiguousCreate(ProvisionerError):
    """A create may or may not have happened (timeout, dropped connection, 5xx)."""

    def __init__(self, key: str, cause: Exception) -> None:
        self.key = key
        super().__init__(f"create of {key} has an unknown outcome: {cause}")


class UnusableCreate(ProvisionerError):
    """A create whose answer must not be delivered; the credential it made was deleted again."""

    def __init__(self, key: str, client_id: str, problem: str) -> None:
        self.key = key
        self.client_id = client_id
        self.problem = problem
        super().__init__(
            f"create of {key}: {problem}; the credential it made ({client_id}) is deleted"
        )


class UnusableAccess(UnusableAnswer):
    """A PATCH adding an access to a project key answered unusably (`cause`): the key may now
    hold an access whose secrets no sink can get, and no PATCH takes an access back, so the
    caller deletes the key `key_id` (and makes it anew)."""

    def __init__(self, key: str, key_id: str, cause: UnusableAnswer) -> None:
        self.method = cause.method
        self.path = cause.path
        self.key = key
        self.key_id = key_id
        ProvisionerError.__init__(self, f"adding access to {key}: {cause}")


class ProjectKeyBusy(ProvisionerError):
    """A project key the API refuses to change now: `creating`, `deleting`, `delete_failed`."""

    def __init__(self, key_id: str, state: str) -> None:
        self.key_id = key_id
        self.state = state
        super().__init__(f"project key {key_id} is {state}: the API cannot change it now")


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

    @classmethod
    def from_response(
        cls,
        sink: str,
        message: str,
        status: int,
        headers: Mapping[str, str] | None = None,
        *,
        throttled: bool = False,
    ) -> SinkError:
        """A store's failed answer: retryable when 429 or 5xx (or `throttled`, the store's own
        word for it), waiting what its `Retry-After` header asks."""
        hint = parse_retry_after(headers.get("Retry-After")) if headers is not None else None
        retryable = throttled or status == 429 or status >= 500
        return cls(sink, message, retryable=retryable, retry_after=hint)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """`Retry-After` as seconds from now: delta-seconds or an HTTP date; None if absent or bad.

    Here rather than in `provisioner.http`, because the errors that carry the hint parse it."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


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


class BudgetExceeded(ProvisionerError):
    """The plan would change more than the change budget allows: nothing was written."""


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
