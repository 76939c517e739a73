"""How the `vault` sink gets its token: a static one, or a Kubernetes or AppRole login.

    auth: {method: token}             (the default) VAULT_TOKEN, VAULT_TOKEN_FILE, ~/.vault-token
    auth: {method: kubernetes, role: NAME, mount: kubernetes, jwt_file: <service-account token>}
    auth: {method: approle, role_id: ID, secret_id_file: PATH, mount: approle}

A login (`POST /v1/auth/<mount>/login`) happens on the first call that needs a token, once for
however many calls are waiting; its client token serves the run. When Vault answers 403 and the
token turns out to be dead (`auth/token/lookup-self` is refused too: its lease ended), the sink
logs in once more and the call is sent again. The JWT, the secret_id and every client token are
registered as secrets, so no log line or error shows them. A refused login is a `LoginFailed`
(exit 2) naming the method, the mount and the role.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

import anyio
import httpx
import structlog
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from provisioner.errors import SinkError, UsageError
from provisioner.fs import atomic
from provisioner.logs import cut, register_secret
from provisioner.sinks._scaffold import response_json

log = structlog.get_logger("provisioner.sinks.vault")

#: Where Kubernetes mounts a pod's service-account token.
SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"
#: The most read of a token, JWT or secret_id file: any of them is a few KiB at most.
MAX_CREDENTIAL_FILE_BYTES = 64 * 1024
_MOUNT_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-/")


def _check_mount(value: str) -> str:
    value = value.strip("/")
    if not value or not set(value) <= _MOUNT_CHARS or {".", ".."} & set(value.split("/")):
        raise ValueError(f"{value!r} is not an auth mount path (letters, digits, '_.-' and '/')")
    return value


class _AuthOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TokenAuth(_AuthOptions):
    """A static token: VAULT_TOKEN, else VAULT_TOKEN_FILE, else `~/.vault-token` (the default)."""

    method: Literal["token"] = "token"


class KubernetesAuth(_AuthOptions):
    """Log in with the pod's service-account token at `auth/<mount>/login` as `role`."""

    method: Literal["kubernetes"]
    role: Annotated[str, Field(min_length=1)]
    mount: str = "kubernetes"
    jwt_file: Annotated[str, Field(min_length=1)] = SERVICE_ACCOUNT_TOKEN

    _mount = field_validator("mount")(_check_mount)


class AppRoleAuth(_AuthOptions):
    """Log in with a role_id and the secret_id read from `secret_id_file`."""

    method: Literal["approle"]
    role_id: Annotated[str, Field(min_length=1)]
    secret_id_file: Annotated[str, Field(min_length=1)]
    mount: str = "approle"

    _mount = field_validator("mount")(_check_mount)


AuthOptions = Annotated[TokenAuth | KubernetesAuth | AppRoleAuth, Field(discriminator="method")]
LoginAuth = KubernetesAuth | AppRoleAuth
METHODS = ("token", "kubernetes", "approle")


class LoginFailed(UsageError):
    """Vault refused the login: a configuration problem (exit 2), not a transient one."""


def describe(auth: LoginAuth) -> str:
    """`kubernetes login at auth/kubernetes/login as role 'x'`: never the JWT or secret_id."""
    role = auth.role if isinstance(auth, KubernetesAuth) else auth.role_id
    kind = "role" if isinstance(auth, KubernetesAuth) else "role_id"
    return f"{auth.method} login (mount {auth.mount!r}, {kind} {role!r})"


def read_credential(auth: LoginAuth, cwd: Path) -> SecretStr:
    """The JWT or secret_id, read now (each login reads it again: Kubernetes rotates the JWT)."""
    if isinstance(auth, KubernetesAuth):
        name, what = auth.jwt_file, "JWT"
    else:
        name, what = auth.secret_id_file, "secret_id"
    path = cwd / name
    try:
        text = read_credential_file(path)
    except OSError as exc:
        raise UsageError(
            f"cannot read the {what} file {path} for the Vault {describe(auth)}: "
            f"{atomic.describe(exc)}"
        ) from None
    except UnicodeDecodeError:
        raise UsageError(
            f"the {what} file {path} for the Vault {describe(auth)} is not UTF-8"
        ) from None
    if not text:
        raise UsageError(f"the {what} file {path} for the Vault {describe(auth)} is empty")
    register_secret(text)
    return SecretStr(text)


def read_credential_file(path: Path) -> str:
    """A token, JWT or secret_id file's text, stripped; OSError unless it is a regular file.

    O_NONBLOCK: opening a FIFO for reading otherwise waits, in the event loop's thread where no
    signal can end it, for a writer that may never come. Reading stops past the cap, so a
    device (`/dev/zero`) or a runaway file cannot fill memory either.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file (a FIFO, device or directory)")
        raw = handle.read(MAX_CREDENTIAL_FILE_BYTES + 1)
    if len(raw) > MAX_CREDENTIAL_FILE_BYTES:
        raise OSError(errno.EFBIG, f"larger than {MAX_CREDENTIAL_FILE_BYTES // 1024} KiB")
    return raw.decode("utf-8").strip()


class Tokens:
    """The token calls are sent with: static, or obtained by a login and obtained again."""

    def __init__(
        self,
        auth: LoginAuth | None,
        *,
        static: SecretStr | None,
        cwd: Path,
        namespace_headers: Mapping[str, str],
        sink: str,
        where: str,
    ) -> None:
        self._auth = auth
        self._sink = sink
        self._where = where
        self._cwd = cwd
        self._headers = dict(namespace_headers)
        self._token = static
        self._lock = anyio.Lock()
        self.logins = 0  # how many logins this sink made (for tests and logs)
        if auth is not None:
            read_credential(auth, cwd)  # fail before any call when the file is unreadable

    @property
    def logs_in(self) -> bool:
        return self._auth is not None

    async def current(self, http: httpx.AsyncClient) -> str:
        """The token to send; logs in first when there is none yet."""
        token = self._token
        if token is None:
            async with self._lock:
                if self._token is None:
                    await self._login(http)
                token = self._token
        assert token is not None
        return token.get_secret_value()

    async def replace_if_dead(self, http: httpx.AsyncClient, used: str) -> bool:
        """After a 403 for `used`: whether to send the call again with a new token.

        Only a login's token is replaced, and only when it is dead (lookup-self is refused too);
        a live token refused by its policy keeps the 403. Concurrent 403s log in once.
        """
        if self._auth is None:
            return False
        if not self._is_current(used):
            return True  # another call has already logged in again
        if await self._alive(http, used):
            return False
        async with self._lock:
            if self._is_current(used):
                log.info("vault.login_again", method=self._auth.method, mount=self._auth.mount)
                await self._login(http)
        return True

    def _is_current(self, used: str) -> bool:
        return self._token is not None and self._token.get_secret_value() == used

    async def _alive(self, http: httpx.AsyncClient, token: str) -> bool:
        headers = {**self._headers, "X-Vault-Token": token}
        try:
            answer = await http.get("auth/token/lookup-self", headers=headers)
        except httpx.TransportError:
            return False  # cannot tell: a new login costs one call
        return answer.status_code != 403

    async def _login(self, http: httpx.AsyncClient) -> None:
        auth = self._auth
        assert auth is not None
        secret = read_credential(auth, self._cwd)
        if isinstance(auth, KubernetesAuth):
            body = {"role": auth.role, "jwt": secret.get_secret_value()}
        else:
            body = {"role_id": auth.role_id, "secret_id": secret.get_secret_value()}
        answer = await http.post(f"auth/{auth.mount}/login", json=body, headers=self._headers)
        message = f"the Vault {describe(auth)} at {self._where}: {_reason(answer)}"
        busy = SinkError.from_response(self._sink, message, answer.status_code, answer.headers)
        if busy.retryable:  # busy or sealed: retried
            raise busy
        token = _client_token(answer)
        if token is None:
            raise LoginFailed(
                f"sink {self._sink!r}: the Vault {describe(auth)} at {self._where} was refused: "
                f"{_reason(answer)}"
            )
        register_secret(token)
        self._token = SecretStr(token)
        self.logins += 1
        log.debug("vault.logged_in", method=auth.method, mount=auth.mount)


def _client_token(answer: httpx.Response) -> str | None:
    if not answer.is_success:
        return None
    body = response_json(answer)
    auth = body.get("auth")
    token = auth.get("client_token") if isinstance(auth, dict) else None
    return token if isinstance(token, str) and token else None


def errors_of(answer: httpx.Response) -> str:
    """Vault's `errors` of a failed answer on one line (else the reason phrase), redacted and
    cut (`logs.cut`: redacted before it is cut)."""
    errors = response_json(answer).get("errors")
    text = "; ".join(map(str, errors)) if isinstance(errors, list) and errors else ""
    return cut(text or answer.reason_phrase)


def _reason(answer: httpx.Response) -> str:
    if answer.is_success:
        return "its answer holds no client token"
    return f"HTTP {answer.status_code}: {errors_of(answer)}"
