"""The JSON shapes of Streamkap's requests and answers, checked where they enter.

An answer that is not what Streamkap documents (docs/api.md) raises `Malformed` naming what was
wrong, which the client turns into an error naming the call; it never surfaces as a KeyError deep
in a run. A create's answer is checked hardest: its secret is shown once, so an answer without a
usable one, or one that made something other than what was asked, must not be delivered.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from pydantic import SecretStr

from provisioner.errors import UnusableAnswer
from provisioner.model import (
    CreatedCredential,
    DesiredCredential,
    RemoteCredential,
    Role,
    owner_key,
)

#: A secret as the listing masks it (`abc******xyz`): never a real one.
_MASKED = re.compile(r"\*{3,}")
#: A token lifetime missing, zero or negative is taken as this (a 401 still renews it early); a
#: positive one is believed down to MIN_TOKEN_LIFETIME, so no answer means a login per call.
DEFAULT_TOKEN_LIFETIME = 3600.0
MIN_TOKEN_LIFETIME = 1.0

T = TypeVar("T")


class Malformed(ValueError):
    """An answer that is not the documented shape; the message says what is wrong (no values)."""


def parsed(method: str, path: str, parse: Callable[[Any], T], body: Any) -> T:
    """`parse(body)`; an answer of the wrong shape is an UnusableAnswer naming the call."""
    try:
        return parse(body)
    except Malformed as exc:
        raise UnusableAnswer(method, path, str(exc)) from None


@dataclass(frozen=True, slots=True)
class TokenAnswer:
    access: SecretStr
    refresh: SecretStr | None
    lifetime: float  # seconds


def create_body(desired: DesiredCredential) -> dict[str, Any]:
    """The `ClientCredentialCreateReq` for a credential: empty lists are omitted, never sent."""
    body: dict[str, Any] = {"description": desired.remote_description}
    if desired.service_id is not None:
        body["service_id"] = desired.service_id
    if desired.role_ids:
        body["role_ids"] = list(desired.role_ids)
    if desired.permission_ids:
        body["permission_ids"] = list(desired.permission_ids)
    return body


def update_body(desired: DesiredCredential) -> dict[str, Any]:
    """The PATCH body: the roles alone. Never the description: its ownership marker is already
    there, and an API that cuts descriptions could cut it off, after which the credential,
    its roles changed, would leave management. (Never `service_id`: PATCH takes none.)"""
    return {"role_ids": list(desired.role_ids)}


def parse_roles(body: Any) -> list[Role]:
    """`GET /auth/roles`: a list of Role objects with string `id`, `key` and `name`."""
    return [
        Role(string_field(item, "id"), string_field(item, "key"), string_field(item, "name"))
        for item in _objects(body, "roles")
    ]


class Listing(list[RemoteCredential]):
    """A listing already parsed while it was decoded (`decode_listing`)."""


def decode_listing(content: bytes) -> Any:
    """A listing's answer decoded: its credentials parsed one item at a time, so the JSON of only
    one item exists at once (at 100,000 credentials, the whole JSON as objects took 150 MB).

    Anything unusual (not JSON, not a list, a malformed item) is decoded whole, as any answer
    is, for `parse_listing` to report exactly as it always has.
    """
    if not content:
        return {}
    text = content.decode(json.detect_encoding(content), "surrogatepass")
    parsed = _streamed(text)
    return parsed if parsed is not None else json.loads(text)


def parse_listing(body: Any) -> list[RemoteCredential]:
    """`GET /auth/client-credentials`, each credential once (a repeated client_id is dropped)."""
    if isinstance(body, Listing):
        return list(body)
    unique: dict[str, RemoteCredential] = {}
    shared: dict[Any, Any] = {}
    for item in _objects(body, "client credentials"):
        credential = parse_credential(item, shared)
        unique.setdefault(credential.client_id, credential)
    return list(unique.values())


_JSON_SPACE = re.compile(r"[ \t\n\r]*")  # the whitespace JSON allows between tokens
#: One JSON value from a position: the C scanner `json.loads` runs on the whole text.
_SCAN: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def _streamed(text: str) -> Listing | None:
    """The listing parsed item by item, as `parse_listing(json.loads(text))` would; None for
    anything else, left to that path."""
    at = _space(text, 0)
    if text[at : at + 1] != "[":
        return None
    at = _space(text, at + 1)
    unique: dict[str, RemoteCredential] = {}
    shared: dict[Any, Any] = {}
    separator = text[at : at + 1]
    while separator != "]":
        try:
            item, at = _SCAN(text, at)
            credential = parse_credential(item, shared) if isinstance(item, dict) else None
        except (StopIteration, ValueError, RecursionError):  # Malformed is a ValueError
            return None
        if credential is None:
            return None
        unique.setdefault(credential.client_id, credential)
        at = _space(text, at)
        separator = text[at : at + 1]
        if separator not in (",", "]"):
            return None
        if separator == ",":
            at = _space(text, at + 1)
    return Listing(unique.values()) if _space(text, at + 1) == len(text) else None


def _space(text: str, at: int) -> int:
    """Where the whitespace from `at` ends."""
    found = _JSON_SPACE.match(text, at)
    return found.end() if found else at


def parse_credential(
    item: dict[str, Any], shared: dict[Any, Any] | None = None
) -> RemoteCredential:
    """A listed, created or updated `ClientCredential` (its secret, if any, is not kept here).

    `shared` holds the role ids and their sets met so far in one listing: a hundred thousand
    credentials have a handful of distinct ones, kept once each.
    """
    client_id = string_field(item, "client_id")
    if not client_id:
        raise Malformed("a credential has an empty client_id")
    permissions = item.get("permission_ids")  # not in Streamkap's listing: None means unknown
    role_ids = frozenset(
        string_field(role, "id") for role in _objects(item.get("roles") or [], "roles")
    )
    return RemoteCredential(
        client_id=client_id,
        description=optional_string_field(item, "description"),
        role_ids=_shared(shared, role_ids),
        service_id=optional_string_field(item, "service_id"),
        created_at=_parse_time(item.get("created_at")),
        permission_ids=(
            _shared(shared, frozenset(map(str, permissions)))
            if isinstance(permissions, list)
            else None
        ),
    )


def _shared(shared: dict[Any, Any] | None, value: T) -> T:
    """The one equal value already kept in `shared`, else `value` (now kept)."""
    return value if shared is None else shared.setdefault(value, value)


def created_id(body: Any) -> str | None:
    """The client_id a create's answer names, if it names one at all."""
    client_id = body.get("client_id") if isinstance(body, dict) else None
    return client_id if isinstance(client_id, str) and client_id else None


def parse_created(body: Any) -> CreatedCredential:
    """A create's answer: Malformed (the whole answer), or `UnusableSecret` (only the secret)."""
    if not isinstance(body, dict):
        raise Malformed(f"expected a JSON object, got {kind_of(body)}")
    remote = parse_credential(body)
    secret = body.get("secret")
    if not isinstance(secret, str) or not secret.strip():
        raise UnusableSecret("no secret" if secret in (None, "") else f"a {kind_of(secret)} secret")
    if _MASKED.search(secret):
        raise UnusableSecret("a masked secret")
    return CreatedCredential(remote=remote, secret=SecretStr(secret))


class UnusableSecret(ValueError):
    """A create answered with no usable secret: what is wrong with it (never its value)."""


def differences(
    desired: DesiredCredential, made: RemoteCredential, *, marker: bool = True
) -> list[str]:
    """What the API made otherwise than asked: the marker (unless `marker` is False: a PATCH
    sends no description, so its answer's text is the API's to show), the roles, a named
    service_id."""
    found = []
    if marker and owner_key(made.description) != desired.owned_key:
        found.append("the description lost its ownership marker")
    if desired.role_ids and made.role_ids != frozenset(desired.role_ids):
        found.append(f"roles {_ids(desired.role_ids)} became {_ids(made.role_ids)}")
    if desired.service_id is not None and made.service_id != desired.service_id:
        found.append(f"service_id {desired.service_id} became {made.service_id or 'none'}")
    return found


def parse_token(body: Any) -> TokenAnswer:
    """`POST /auth/access-token` (and /refresh): a token, maybe a refresh token, a lifetime."""
    if not isinstance(body, dict):
        raise Malformed(f"expected a JSON object, got {kind_of(body)}")
    access = body.get("accessToken")
    if not isinstance(access, str) or not access:
        raise Malformed("it has no accessToken")
    refresh = body.get("refreshToken")
    lifetime = body.get("expiresIn")
    if not isinstance(lifetime, int | float) or isinstance(lifetime, bool) or lifetime <= 0:
        lifetime = DEFAULT_TOKEN_LIFETIME
    return TokenAnswer(
        access=SecretStr(access),
        refresh=SecretStr(refresh) if isinstance(refresh, str) and refresh else None,
        lifetime=max(float(lifetime), MIN_TOKEN_LIFETIME),
    )


def _objects(body: Any, what: str) -> list[dict[str, Any]]:
    if not isinstance(body, list):
        raise Malformed(f"expected a list of {what}, got {kind_of(body)}")
    for item in body:
        if not isinstance(item, dict):
            raise Malformed(f"expected a list of {what}, found {kind_of(item)} in it")
    return body


def string_field(item: Mapping[str, Any], name: str) -> str:
    """The string field `name` of a JSON object; Malformed when missing or of another type."""
    value = item.get(name)
    if not isinstance(value, str):
        shown = "missing" if value is None else kind_of(value)
        raise Malformed(f"field {name!r} is {shown}, expected a string")
    return value


def optional_string_field(item: Mapping[str, Any], name: str) -> str | None:
    """The string or null field `name` of a JSON object; Malformed for another type."""
    value = item.get(name)
    if value is not None and not isinstance(value, str):
        raise Malformed(f"field {name!r} is {kind_of(value)}, expected a string or null")
    return value


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None  # an unknown creation time counts as brand new (never rotated)


def kind_of(value: Any) -> str:
    """How a JSON value is named in a Malformed message: `an object`, `a list`, `null`..."""
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), "null" if value is None else f"a {type(value).__name__}"
    )


def _ids(ids: Iterable[str]) -> str:
    return ",".join(sorted(ids)) or "none"
