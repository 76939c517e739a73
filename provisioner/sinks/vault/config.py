"""The `vault` sink's configuration: its options, its `--sink` URI, and how it connects.

Connection settings come from `SinkContext.environ` (read once at the edge): `VAULT_ADDR`,
`VAULT_TOKEN` or `VAULT_TOKEN_FILE` (unless the sink's `auth` block logs in), `VAULT_NAMESPACE`,
and TLS as the Vault CLI reads it: `VAULT_CACERT` (a PEM file) or else `VAULT_CAPATH` (a directory
of them), `VAULT_CLIENT_CERT` with `VAULT_CLIENT_KEY`, and `VAULT_SKIP_VERIFY`.
"""

from __future__ import annotations

import os
import re
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import httpx
from pydantic import (
    SecretStr,
    ValidationError,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from provisioner.config import vault_bool
from provisioner.errors import UsageError
from provisioner.fs import atomic
from provisioner.sinks.base import SinkContext
from provisioner.sinks.fields import MappedSinkOptions
from provisioner.sinks.vault.auth import (
    METHODS,
    AuthOptions,
    LoginAuth,
    TokenAuth,
    read_credential_file,
)

_T = TypeVar("_T")
URI_FORM = "vault:http(s)://HOST:PORT/MOUNT[/PREFIX]"
_PATH = re.compile(r"[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*")


class VaultSinkOptions(MappedSinkOptions):
    """Options of the `vault` sink: where the KV v2 engine is and the folder to write under."""

    address: str | None = None  # else VAULT_ADDR
    mount: str = "secret"
    prefix: str | None = None
    auth: AuthOptions = TokenAuth()  # how the token is obtained (`auth`)

    @model_validator(mode="wrap")
    @classmethod
    def _auth_errors(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        """Problems in `auth` located at its own keys (pydantic puts the method in between)."""
        try:
            return handler(data)
        except ValidationError as exc:
            raise ValidationError.from_exception_data(
                exc.title, [_auth_error(error) for error in exc.errors()]
            ) from None

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


def _auth_error(error: Any) -> Any:
    loc, kind = tuple(error["loc"]), error["type"]
    if loc[:1] != ("auth",):
        return error
    if kind == "union_tag_not_found":
        return {**error, "type": "missing", "loc": ("auth", "method")}
    if kind == "union_tag_invalid":
        tag = error.get("ctx", {}).get("tag")
        message = f"unknown auth method {tag!r}: expected one of {', '.join(METHODS)}"
        return {
            **error,
            "type": PydanticCustomError("auth_method", message),
            "loc": ("auth", "method"),
        }
    if len(loc) > 1 and loc[1] in METHODS:
        return {**error, "loc": ("auth", *loc[2:])}
    return error


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
    """How to reach Vault: address, token or login, namespace, TLS, simulator transport.

    `token` is the static token (None when `login` obtains one); `login` the sink's `auth`
    block when it logs in. Under `--simulate` the stub's root token is used whatever `auth` says.
    """

    address: str
    token: SecretStr | None = field(default=None, repr=False)
    namespace: str | None = None
    verify: ssl.SSLContext | bool = True
    transport: httpx.AsyncBaseTransport | None = None
    login: LoginAuth | None = None
    skip_verify: bool = False

    @classmethod
    def of(cls, options: VaultSinkOptions, context: SinkContext) -> Connection:
        """Resolve the connection; UsageError when something needed is missing or unreadable."""
        environ = context.environ
        auth = options.auth
        login = None if context.simulated or isinstance(auth, TokenAuth) else auth
        return cls(
            address=_address(options, environ),
            token=None if login else _token(environ, context.cwd),
            namespace=environ.get("VAULT_NAMESPACE", "").strip("/") or None,
            verify=tls_context(environ, context.cwd),
            transport=context.transport,
            login=login,
            skip_verify=_skip_verify(environ),
        )

    def headers(self, token: str | None = None) -> dict[str, str]:
        """Per-request headers: `token` (unwrapped by the caller) when given."""
        headers = {"X-Vault-Request": "true"}
        if token is not None:
            headers["X-Vault-Token"] = token
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
        return read_credential_file(path)
    except OSError as exc:
        reason = atomic.describe(exc)
        raise UsageError(f"cannot read the Vault token file {path}: {reason}") from None
    except UnicodeDecodeError:
        raise UsageError(f"the Vault token file {path} is not UTF-8 text") from None


def _skip_verify(environ: Mapping[str, str]) -> bool:
    try:
        return vault_bool(environ.get("VAULT_SKIP_VERIFY"))
    except ValueError as exc:
        raise UsageError(f"VAULT_SKIP_VERIFY: {exc}") from None


def tls_context(environ: Mapping[str, str], cwd: Path) -> ssl.SSLContext | bool:
    """The TLS settings of the Vault CLI as an SSLContext; True when none is set (system CAs).

    `VAULT_CACERT` (a PEM file) wins over `VAULT_CAPATH` (a directory of PEM files); either one
    replaces the system's trust store. `VAULT_CLIENT_CERT` and `VAULT_CLIENT_KEY` (both, or
    neither) are presented to a Vault that asks for a client certificate. `VAULT_SKIP_VERIFY`
    turns verification of Vault's certificate off (the client certificate is still sent).
    UsageError when a file cannot be loaded.
    """
    cacert, capath = environ.get("VAULT_CACERT"), environ.get("VAULT_CAPATH")
    cert, key = environ.get("VAULT_CLIENT_CERT"), environ.get("VAULT_CLIENT_KEY")
    skip = _skip_verify(environ)
    if not (cacert or capath or cert or key or skip):
        return True  # the system's trust store, loaded when the first HTTPS call needs it
    if bool(cert) != bool(key):
        raise UsageError("VAULT_CLIENT_CERT and VAULT_CLIENT_KEY must be set together (mTLS)")
    context: ssl.SSLContext
    if cacert:
        context = _loaded(
            "VAULT_CACERT", cacert, lambda: ssl.create_default_context(cafile=cwd / cacert)
        )
    elif capath:
        context = _ca_directory(cwd / capath, capath)
    else:
        context = ssl.create_default_context()
    if cert and key:
        _loaded(
            "VAULT_CLIENT_CERT/VAULT_CLIENT_KEY",
            f"{cert}, {key}",
            lambda: context.load_cert_chain(cwd / cert, cwd / key),
        )
    if skip:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _ca_directory(directory: Path, given: str) -> ssl.SSLContext:
    """A context trusting every certificate in the PEM files under `directory`, as `vault` reads
    VAULT_CAPATH (all files, recursively; hidden entries such as Kubernetes' `..data` skipped)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # no system CAs: VAULT_CAPATH replaces them
    if not directory.is_dir():
        raise UsageError(f"VAULT_CAPATH {given}: not a directory")
    files: list[Path] = []
    for root, dirs, names in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        files += [Path(root) / name for name in sorted(names) if not name.startswith(".")]
    for path in files:
        _loaded("VAULT_CAPATH", str(path), partial(context.load_verify_locations, cafile=path))
    if not files:
        raise UsageError(f"VAULT_CAPATH {given}: no CA certificate files in it")
    return context


def _loaded(variable: str, given: str, load: Callable[[], _T]) -> _T:
    try:
        return load()
    except OSError as exc:  # ssl.SSLError included
        reason = str(exc) if isinstance(exc, ssl.SSLError) else atomic.describe(exc)
        raise UsageError(f"{variable} {given}: cannot load it: {reason}") from None
