"""The `vault` sink's configuration: its options, its `--sink` URI, and how it connects.

Connection settings come from `SinkContext.environ` (read once at the edge): `VAULT_ADDR`,
`VAULT_TOKEN` or `VAULT_TOKEN_FILE`, `VAULT_NAMESPACE`, `VAULT_CACERT`.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr, field_validator

from provisioner.errors import UsageError
from provisioner.sinks import atomic
from provisioner.sinks.base import SinkContext, SinkOptions

URI_FORM = "vault:http(s)://HOST:PORT/MOUNT[/PREFIX]"
_PATH = re.compile(r"[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*")


class VaultSinkOptions(SinkOptions):
    """Options of the `vault` sink: where the KV v2 engine is and the folder to write under."""

    address: str | None = None  # else VAULT_ADDR
    mount: str = "secret"
    prefix: str | None = None

    @field_validator("address")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        return None if value is None else check_address(value)

    @field_validator("mount")
    @classmethod
    def _mount(cls, value: str) -> str:
        return check_path(value)

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str | None) -> str | None:
        return check_path(value) if value and value.strip("/") else None


def check_path(value: str) -> str:
    """A mount or prefix: segments of letters, digits and `_.-`, outer slashes dropped."""
    value = value.strip("/")
    if not _PATH.fullmatch(value) or {".", ".."} & set(value.split("/")):
        raise ValueError(f"{value!r} is not a Vault path (letters, digits, '_.-' and '/')")
    return value


def check_address(value: str) -> str:
    """A Vault address as `http(s)://HOST[:PORT][/PATH]`, without a trailing slash."""
    try:
        url = httpx.URL(value)
    except httpx.InvalidURL:
        url = None
    if url is None or url.scheme not in ("http", "https") or not url.host:
        raise ValueError("the Vault address must be an http:// or https:// URL")
    if url.userinfo:
        raise ValueError("the Vault address must not hold credentials: use VAULT_TOKEN")
    if url.query or url.fragment:
        raise ValueError("the Vault address must not have a query or fragment")
    return str(url).rstrip("/")


def options_from_uri(target: str) -> dict[str, Any]:
    """`http(s)://HOST:PORT/MOUNT[/PREFIX]`: the first path segment is the mount."""
    scheme, sep, rest = target.partition("://")
    authority, _, path = rest.partition("/")
    mount, _, prefix = path.strip("/").partition("/")
    if not sep or not authority or not mount:
        raise ValueError(f"expected {URI_FORM}")
    options: dict[str, Any] = {"address": f"{scheme}://{authority}", "mount": mount}
    if prefix:
        options["prefix"] = prefix
    return options


@dataclass(frozen=True)
class Connection:
    """How to reach Vault: address, token, namespace, TLS verification, simulator transport."""

    address: str
    token: SecretStr = field(repr=False)
    namespace: str | None = None
    verify: ssl.SSLContext | bool = True
    transport: httpx.AsyncBaseTransport | None = None

    @classmethod
    def of(cls, options: VaultSinkOptions, context: SinkContext) -> Connection:
        """Resolve the connection; UsageError when something needed is missing or unreadable."""
        environ = context.environ
        return cls(
            address=_address(options, environ),
            token=_token(environ, context.cwd),
            namespace=environ.get("VAULT_NAMESPACE", "").strip("/") or None,
            verify=_verify(environ, context.cwd),
            transport=context.transport,
        )

    def headers(self) -> dict[str, str]:
        """Per-request headers; the token is unwrapped only here."""
        headers = {"X-Vault-Token": self.token.get_secret_value(), "X-Vault-Request": "true"}
        if self.namespace:
            headers["X-Vault-Namespace"] = self.namespace
        return headers


def _address(options: VaultSinkOptions, environ: Mapping[str, str]) -> str:
    # The manifest's (or URI's) address wins over VAULT_ADDR.
    address = options.address or environ.get("VAULT_ADDR")
    if not address:
        raise UsageError("no Vault address: give `address` in the sink or set VAULT_ADDR")
    try:
        return check_address(address)
    except ValueError as exc:
        raise UsageError(f"VAULT_ADDR: {exc}") from None


def _token(environ: Mapping[str, str], cwd: Path) -> SecretStr:
    token = environ.get("VAULT_TOKEN", "").strip()
    token_file = environ.get("VAULT_TOKEN_FILE")
    if not token and token_file:
        token = _read_token_file(cwd / token_file)
    if not token:
        raise UsageError(
            "no Vault token: set VAULT_TOKEN or VAULT_TOKEN_FILE (or log in with `vault login`)"
        )
    return SecretStr(token)


def _read_token_file(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        reason = atomic.describe(exc)
        raise UsageError(f"cannot read the Vault token file {path}: {reason}") from None
    except UnicodeDecodeError:
        raise UsageError(f"the Vault token file {path} is not UTF-8 text") from None


def _verify(environ: Mapping[str, str], cwd: Path) -> ssl.SSLContext | bool:
    cacert = environ.get("VAULT_CACERT")
    if not cacert:
        return True  # the system's trust store: verification is never off
    try:
        return ssl.create_default_context(cafile=cwd / cacert)
    except OSError as exc:  # ssl.SSLError included
        reason = str(exc) if isinstance(exc, ssl.SSLError) else atomic.describe(exc)
        raise UsageError(f"VAULT_CACERT {cacert}: cannot load it: {reason}") from None
