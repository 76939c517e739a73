"""A project key's Kafka username and password: derived from its key, chosen by the caller.

The API wants usernames of lowercase letters, digits and dashes, 1-24 characters, no dash at
either end, unique in the tenant. A username is `<readable>-<generation>`:

- the readable part (at most 19 characters) is the manifest's `kafka.username`, else the key
  `service/credential` sanitised; when sanitising changed it (a key always holds a `/`) or it is
  too long, it is cut to 14 characters and a 4-character hash of the owner-qualified key is
  appended, so keys that read alike (or of two owners) still get readable parts of their own;
- the generation (4 random characters) changes on every replacement, so an old and a new key
  live side by side during grace with different Kafka users.

Pure, but for the randomness of `new_generation` and `new_password`.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import string

from pydantic import SecretStr

from provisioner.logs import register_secret
from provisioner.model import split_owner

#: What the API accepts (docs/api.md, "Project keys").
USERNAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,22}[a-z0-9])?\Z")
MAX_USERNAME = 24
GENERATION_CHARS = 4
#: The longest readable part: the username less `-` and the generation.
MAX_READABLE = MAX_USERNAME - 1 - GENERATION_CHARS
HASH_CHARS = 4
#: How much of a sanitised (or too long) key is kept before its hash.
CUT = MAX_READABLE - 1 - HASH_CHARS
#: Passwords: the API takes 12-128 characters; 32 random bytes are 43 URL-safe characters.
PASSWORD_BYTES = 32

_ALPHABET = string.digits + string.ascii_lowercase  # base36, the API's username letters
_OUTSIDE = re.compile(r"[^a-z0-9]+")


def derive(owned_key: str, readable: str | None, generation: str) -> str:
    """The Kafka username of a key: `readable_part(...)-generation` (see the module's doc)."""
    return f"{readable_part(owned_key, readable)}-{generation}"


def readable_part(owned_key: str, readable: str | None) -> str:
    """The manifest's `kafka.username` as given (already validated), else one from the key."""
    if readable is not None:
        return readable
    _, key = split_owner(owned_key)
    sanitised = _OUTSIDE.sub("-", key.lower()).strip("-")
    if sanitised and sanitised == key and len(sanitised) <= MAX_READABLE:
        return sanitised
    cut = sanitised[:CUT].rstrip("-")
    tag = _hash(owned_key)
    return f"{cut}-{tag}" if cut else tag


def new_generation() -> str:
    """A fresh generation suffix: 4 characters in [a-z0-9] from a CSPRNG."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(GENERATION_CHARS))


def readable_of(username: str) -> str:
    """The readable part of a derived username (its generation suffix stripped)."""
    readable, dash, _ = username.rpartition("-")
    return readable if dash else username


def same_user(owned_key: str, readable: str | None, username: str) -> bool:
    """Whether a live key's Kafka `username` was derived for this desired readable part (any
    generation): False means the manifest's `kafka.username` changed, a drift."""
    _, dash, generation = username.rpartition("-")
    if not dash or len(generation) != GENERATION_CHARS:
        return False
    return readable_of(username) == readable_part(owned_key, readable)


def new_password() -> SecretStr:
    """A Kafka password from a CSPRNG (43 URL-safe characters), registered for redaction."""
    password = SecretStr(secrets.token_urlsafe(PASSWORD_BYTES))
    register_secret(password)
    return password


def _hash(owned_key: str) -> str:
    """4 base36 characters of the key's SHA-256: stable across runs and processes."""
    number = int.from_bytes(hashlib.sha256(owned_key.encode()).digest(), "big")
    chars = []
    for _ in range(HASH_CHARS):
        number, digit = divmod(number, len(_ALPHABET))
        chars.append(_ALPHABET[digit])
    return "".join(chars)
