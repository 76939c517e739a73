"""Structured logging: one structlog pipeline, JSON off a TTY, and redaction as a last defence.

Two redactions: by key (a field named like a secret is blanked), and by value: every secret the
process knows (its login secret, tokens, the Vault token, each client secret issued or read) is
registered where it enters, and replaced wherever it appears in a log event, an error message
(`ProvisionerError.__str__`), stderr and the report. Servers echo requests; this is what makes
that echo harmless. A secret is registered with the forms an echo may give it (base64, URL-encoded,
JSON-escaped), and an echo is shortened only through `cut`, which redacts before it cuts: a
secret cut in two is no longer the registered value, and its first part would be shown.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import sys
import threading
from collections.abc import Mapping, MutableMapping
from typing import Any, TextIO
from urllib.parse import quote, quote_plus, urlsplit

import structlog
from pydantic import SecretStr

SECRET_KEYS = re.compile(r"secret|token|password|authorization|api[_-]?key", re.IGNORECASE)
REDACTED = "[redacted]"
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": 40}


#: Shorter values are not registered: replacing every "t" or "root" would garble all text, and
#: a real secret or token is far longer.
MIN_SECRET_LENGTH = 8
#: Up to this many secrets, a text is searched for each; past it, through an index of prefixes.
_SCAN_LIMIT = 64

#: How much of an echoed text (an answer's body, a server's message) an error shows.
SHOWN_CHARS = 200

_secrets: set[str] = set()  # every registered form of every secret
_by_prefix: dict[str, set[str]] = {}  # first MIN_SECRET_LENGTH characters -> secrets
_longest = 0  # the longest registered form: how far past a cut a secret can reach
_registry_lock = threading.Lock()  # sinks register from worker threads


def register_secret(value: str | SecretStr | None) -> None:
    """Remember a secret for this process, so that it is redacted wherever it shows up."""
    global _longest
    if value is None:
        return
    text = value.get_secret_value() if isinstance(value, SecretStr) else value
    if len(text) < MIN_SECRET_LENGTH or text in _secrets:
        return
    forms = echoed_forms(text)
    with _registry_lock:
        for form in forms:
            _secrets.add(form)
            _by_prefix.setdefault(form[:MIN_SECRET_LENGTH], set()).add(form)
            _longest = max(_longest, len(form))


def echoed_forms(secret: str) -> set[str]:
    """`secret` as a server may echo it: itself, base64 (standard and URL-safe, alone or inside
    a longer encoded text), URL-encoded, JSON- and Python-escaped."""
    forms = {
        secret,
        quote(secret, safe=""),
        quote_plus(secret, safe=""),
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        json.dumps(secret)[1:-1].replace("/", "\\/"),  # some encoders escape the slash
        repr(secret)[1:-1],
    }
    for encoded in _base64_forms(secret.encode()):
        forms |= {encoded, encoded.replace("+", "-").replace("/", "_")}
    return {form for form in forms if len(form) >= MIN_SECRET_LENGTH}


def _base64_forms(data: bytes) -> list[str]:
    """`data` base64-encoded alone (with and without padding), and the characters that encode
    only `data` at each of the three alignments it can have inside a longer encoded text
    (a `Basic` header encodes `id:secret`; a Secret's manifest may encode a whole file)."""
    alone = base64.b64encode(data).decode("ascii")
    forms = [alone, alone.rstrip("=")]
    for shift in range(3):
        encoded = base64.b64encode(bytes(shift) + data).decode("ascii")
        first = -(-8 * shift // 6)  # the first character made of `data`'s bits only
        end = 8 * (shift + len(data)) // 6  # past the last one
        forms.append(encoded[first:end])
    return forms


def forget_secrets() -> None:
    """Empty the registry (tests; a process otherwise keeps it for its life)."""
    global _longest
    with _registry_lock:
        _secrets.clear()
        _by_prefix.clear()
        _longest = 0


def redact(text: str) -> str:
    """`text` with every registered secret replaced by `[redacted]`."""
    if not _secrets or len(text) < MIN_SECRET_LENGTH:
        return text
    found = _found_in(text)
    for secret in sorted(found, key=len, reverse=True):  # a longer one may contain a shorter
        text = text.replace(secret, REDACTED)
    return text


def cut(text: str, limit: int = SHOWN_CHARS) -> str:
    """`text` redacted, then cut to `limit` characters (with `…` when cut): the one way an echo
    is shortened. Cutting first could leave part of a secret, which redaction no longer knows."""
    reach = _longest
    if len(text) > limit + 2 * reach:
        # Only the head can be shown: redact it alone. A secret cut at the head's end leaves
        # at most `reach - 1` characters at its end, which the shown part must not reach.
        head = redact(text[: limit + 2 * reach])
        if len(head) >= limit + reach:
            return head[:limit] + "…"
    text = redact(text)
    return text if len(text) <= limit else text[:limit] + "…"


def _found_in(text: str) -> set[str]:
    if len(_secrets) <= _SCAN_LIMIT:
        return {secret for secret in list(_secrets) if secret in text}
    # Every window of the prefix length looked up in the index: linear in the text's length,
    # whatever the number of secrets.
    size, index = MIN_SECRET_LENGTH, _by_prefix
    return {
        secret
        for start in range(len(text) - size + 1)
        if (prefix := text[start : start + size]) in index
        for secret in list(index.get(prefix, ()))
        if text.startswith(secret, start)
    }


def redact_value(value: Any) -> Any:
    """`value` with registered secrets replaced in every string, however deeply nested."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact_value(key): redact_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact_value(item) for item in value)
    return value


def redact_known(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Replace every registered secret in every field, nested ones included: applied last."""
    for key, value in event.items():
        event[key] = redact_value(value)
    return event


#: The user and password part of a URL: from `://` to the last `@` before the host's end.
_USERINFO = re.compile(r"(?<=://)[^/\s?#]*@")


def scrub_url(text: str) -> str:
    """`text` (a URL, or a message holding URLs) without their user and password."""
    return _USERINFO.sub("[redacted]@", text)


def register_url_password(url: str | None) -> None:
    """Register the password a URL carries, so a message echoing it is redacted too."""
    try:
        register_secret(urlsplit(url).password if url else None)
    except ValueError:  # not a URL we can take apart; scrub_url still covers its text
        return


def redact_secrets(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Blank the value of any field whose name looks secret, however it got there."""
    for key in list(event):
        if key != "event" and SECRET_KEYS.search(key):
            event[key] = REDACTED
    return event


def wants_color(stream: TextIO, environ: Mapping[str, str] = os.environ) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set to anything but "" (see
    no-color.org; `--no-color` sets it). Our lines, structlog's and rich's all follow it."""
    return not environ.get("NO_COLOR") and stream.isatty()


def uses_json(fmt: str, stream: TextIO) -> bool:
    """JSON when asked for, or by default when `stream` is not a terminal."""
    return fmt == "json" or (fmt == "auto" and not stream.isatty())


def configure_logging(level: str = "info", fmt: str = "auto", stream: TextIO | None = None) -> None:
    """Configure structlog once per process; logs go to stderr (stdout is for machine output)."""
    stream = stream or sys.stderr
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if uses_json(fmt, stream)
        else structlog.dev.ConsoleRenderer(colors=wants_color(stream))
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact_secrets,
            structlog.processors.format_exc_info,
            redact_known,  # last: after the exception became text, before anything is written
            renderer,
        ],
        # Filtering by level at the bound logger makes a disabled event cost one method call.
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS.get(level, logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
