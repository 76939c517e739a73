"""The `vault` sink: a KV v2 secret per credential, `<mount>/data/<prefix>/<service>/<credential>`.

Writes are check-and-set against the version this sink last read, so a concurrent writer is
detected rather than silently overwritten: the sink re-reads, then the engine retries the write.
An undo writes the version our write replaced back as a new version (check-and-set again), so
consumers read the previous record; when there was none, it soft-deletes the latest version
(`DELETE <mount>/data/...`) rather than the metadata, so the history stays (an operator can still
undelete it) and the policy needs no `metadata` rights.

Owners: a run whose owner is not `default` records it in the key's custom metadata
(`streamkap-provisioner-owner`, set before the first version, which needs `create`/`update` on
`<mount>/metadata/...`); a key recording another owner, or none (the default owner's, as every
key written before owners were recorded), is never written, restored over or deleted by it.
"""

from __future__ import annotations

import ssl
from functools import partial
from typing import Any, ClassVar

import anyio
import httpx
import structlog

from provisioner.errors import SinkError
from provisioner.http.retry import Sleep
from provisioner.http.transport import open_transport
from provisioner.logs import register_secret
from provisioner.model import DEFAULT_OWNER, SinkRecord
from provisioner.sinks._scaffold import RemoteSink, Unreachable, response_json
from provisioner.sinks.base import Previous, SinkContext, SinkOptions
from provisioner.sinks.vault import config
from provisioner.sinks.vault.auth import Tokens, describe, errors_of
from provisioner.sinks.vault.config import Connection, VaultSinkOptions

__all__ = ["VaultSink", "VaultSinkOptions"]

log = structlog.get_logger("provisioner.sinks.vault")

# The capabilities a policy must grant on `<mount>/data/...` for each of our verbs.
_CAPABILITIES = {"read": '"read"', "write": '"create", "update"', "delete": '"delete"'}
LOOKUP_SELF = "auth/token/lookup-self"
OWNER_METADATA = "streamkap-provisioner-owner"
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


class VaultSink(RemoteSink):
    """Secrets in HashiCorp Vault's KV version 2 engine, written with check-and-set."""

    options_model: ClassVar[type[SinkOptions]] = VaultSinkOptions
    kind = "vault"
    #: `vault:http(s)://HOST:PORT/MOUNT[/PREFIX]`, parsed where the options are defined.
    options_from_uri = staticmethod(config.options_from_uri)

    def __init__(
        self,
        name: str,
        options: VaultSinkOptions,
        context: SinkContext,
        *,
        sleep: Sleep = anyio.sleep,
    ) -> None:
        super().__init__(name, context, sleep)
        self._connection = connection = Connection.of(options, context)
        if connection.token is not None:
            register_secret(connection.token)  # Vault's errors may echo the request headers
        self._tokens = Tokens(
            connection.login,
            static=connection.token,
            cwd=context.cwd,
            namespace_headers=connection.headers(),
            sink=name,
            where=self._where(),
        )
        if connection.skip_verify:
            # On every run: an unverified Vault is one anybody on the path can impersonate.
            log.warning(
                "vault.tls_unverified",
                sink=name,
                address=connection.address,
                message="VAULT_SKIP_VERIFY is set: Vault's TLS certificate is not verified",
            )
        self._mount = options.mount
        self._prefix = options.prefix
        self._fields = options.field_map()
        self._http = httpx.AsyncClient(
            base_url=f"{self._connection.address}/v1/",
            transport=self._connection.transport
            or open_transport(connections=context.connections, verify=self._connection.verify),
            timeout=context.timeout,
            headers={"User-Agent": "streamkap-provisioner", "Accept": "application/json"},
        )
        # Key path -> the identity (see FieldMap.identity) and version last seen (None: holds
        # nothing; 0: no version).
        self._seen: dict[str, tuple[str | None, int]] = {}
        # Key path -> its custom metadata as last read ({}: none, or no such key).
        self._custom: dict[str, dict[str, str]] = {}

    def __repr__(self) -> str:
        return f"VaultSink({self.name!r}, {self._connection.address}, mount={self._mount!r})"

    async def check(self) -> SinkError | None:
        """Whether Vault accepts the token: one `GET auth/token/lookup-self` (retried if Vault is
        briefly unavailable). Every token may look itself up under Vault's `default` policy."""
        return await self._checked("token check", partial(self._lookup_self, LOOKUP_SELF))

    async def read(self, service: str, credential: str) -> str | None:
        """The stored identity (project key id, else client id); None when absent or when the
        latest version is deleted."""
        path = self._key_path(service, credential)
        self._seen[path] = await self._retrying("read", partial(self._fetch, path))
        return self._seen[path][0]

    async def read_record(self, service: str, credential: str) -> SinkRecord | None:
        """The stored record, secret included; None when absent or deleted."""
        path = self._key_path(service, credential)
        document, version = await self._retrying("read", partial(self._fetch_document, path))
        self._seen[path] = (self._fields.identity(document), version)
        self._fields.remember(document)
        return self._fields.from_document(document, service, credential)

    async def write(self, record: SinkRecord) -> Previous:
        """Store a new version, check-and-set against the version last read; return that version.

        Our write replaces exactly the version it names in `cas`, so that is what an undo puts
        back, even when an earlier attempt landed and only its answer was lost.
        """
        path = self._key_path(record.service, record.credential)
        async with self._lock(path):
            if path not in self._seen:
                self._seen[path] = await self._fetch(path)
            held, cas = self._seen[path]
            if self._custom.get(path, {}).get(OWNER_METADATA, DEFAULT_OWNER) != self.owner:
                await self._record_owner(path)  # a new key of a non-default owner
            response = await self._send(
                "POST", path, "write", _write_body(self._fields.to_document(record), cas)
            )
            if _cas_mismatch(response):
                await self._after_conflict(path, cas, record.identity)
                return Previous(held, cas)
            self._raise_for(response, "write", path)
            self._seen[path] = (record.identity, self._written_version(response, path))
            return Previous(held, cas)

    async def restore(
        self, service: str, credential: str, client_id: str, previous: Previous
    ) -> None:
        """If the latest version still holds `client_id`: write the version it replaced back as a
        new version, or soft-delete it when that version holds nothing (or there was none)."""
        path = self._key_path(service, credential)
        version = previous.content if isinstance(previous.content, int) else 0
        async with self._lock(path):
            self._seen[path] = await self._retrying("read", partial(self._fetch, path))
            if self._seen[path][0] != client_id:
                return  # someone else has written since: theirs stays
            data = await self._retrying("read", partial(self._fetch_data, path, version=version))
            if data is None:
                await self._retrying("delete", partial(self._delete_latest, path))
                self._seen[path] = (None, self._seen[path][1])  # a soft delete adds no version
            else:
                await self._retrying("write", partial(self._write_back, path, data=data))

    async def delete(self, service: str, credential: str, client_id: str) -> None:
        """Soft-delete the latest version if it still holds `client_id`; history stays."""
        await self.restore(service, credential, client_id, Previous())

    async def aclose(self) -> None:
        """Close the connection pool; nothing is buffered."""
        await self._http.aclose()

    # --- KV v2 calls ---------------------------------------------------------------------------

    async def _fetch(self, path: str) -> tuple[str | None, int]:
        """One read: the stored identity (None if absent or deleted) and the current version."""
        document, version = await self._fetch_document(path)
        return self._fields.identity(document), version

    async def _fetch_document(self, path: str) -> tuple[object, int]:
        """One read: the stored data (None if absent or deleted) and the current version."""
        response = await self._send("GET", path, "read")
        body = response_json(response)
        if response.status_code != 404 or body.get("errors"):
            self._raise_for(response, "read", path)
        data = body.get("data")
        if isinstance(data, dict):  # the key exists (a deleted or destroyed version answers 404)
            self._custom[path] = _custom_metadata(data)
            self.check_owner(self._custom[path].get(OWNER_METADATA), self._url(path))
        else:
            self._custom[path] = {}  # absent: no envelope, version 0
        if response.status_code == 404:
            return None, _version(data)
        return (data.get("data") if isinstance(data, dict) else None), _version(data)

    async def _record_owner(self, path: str) -> None:
        """Record this run's owner in the key's custom metadata (the others it has kept)."""
        custom = {**self._custom.get(path, {}), OWNER_METADATA: self.owner}
        response = await self._send(
            "POST", path, "record the owner of", {"custom_metadata": custom}, operation="metadata"
        )
        if response.status_code == 403:
            folder = "/".join(filter(None, (self._mount, "metadata", self._prefix, "*")))
            raise SinkError(
                self.name,
                f"permission denied: may not write the custom metadata of "
                f"{self._url(path, 'metadata')} at {self._where()}; a run whose owner is not "
                f'"default" records it there: the policy needs capabilities ["create", '
                f'"update"] on path "{folder}"',
            )
        self._raise_for(response, "write", path)
        self._custom[path] = custom

    async def _fetch_data(self, path: str, *, version: int) -> dict[str, Any] | None:
        """The data of one version; None for version 0 and for a deleted or destroyed version."""
        if not version:
            return None
        response = await self._send("GET", path, "read", params={"version": str(version)})
        if response.status_code == 404 and not response_json(response).get("errors"):
            return None
        self._raise_for(response, "read", path)
        data = response_json(response).get("data")
        document = data.get("data") if isinstance(data, dict) else None
        if not isinstance(document, dict):
            return None
        self._fields.remember(document)  # now in memory
        return document

    async def _write_back(self, path: str, *, data: dict[str, Any]) -> None:
        """Write `data` as a new version on top of the one last seen (an undo's restore)."""
        held, cas = self._seen[path]
        response = await self._send("POST", path, "write", _write_body(data, cas))
        if _cas_mismatch(response):
            self._seen[path] = await self._fetch(path)
            if self._seen[path][0] == held:
                # Still ours (or our restore landed with its answer lost): write on the new version.
                raise SinkError(
                    self.name, f"{self._url(path)} changed during the undo", retryable=True
                )
            return
        self._raise_for(response, "write", path)
        self._seen[path] = (self._fields.identity(data), self._written_version(response, path))

    async def _lookup_self(self, path: str) -> None:
        try:
            token = await self._tokens.current(self._http)  # a login, the first time
            response = await self._http.get(path, headers=self._connection.headers(token))
        except httpx.TransportError as exc:
            raise self._transport_error(exc, "check the token at", path, raw=True) from None
        if response.is_success:
            return
        status = response.status_code
        if status in (401, 403):
            login = self._connection.login
            whose = f"the token of the {describe(login)}" if login else "the token"
            advice = (
                "log in again" if login else "check VAULT_TOKEN or VAULT_TOKEN_FILE"
            ) + " (wrong, expired or revoked)"
            raise SinkError(
                self.name,
                f"Vault at {self._where()} refused {whose} (HTTP {status} on {path}): {advice}",
            )
        message = f"cannot check the token at {self._where()}: HTTP {status}: {errors_of(response)}"
        raise SinkError.from_response(self.name, message, status, response.headers)

    async def _delete_latest(self, path: str) -> None:
        self._raise_for(await self._send("DELETE", path, "delete"), "delete", path)

    async def _after_conflict(self, path: str, cas: int, client_id: str) -> None:
        """Another writer got in first: re-read, so the engine's retry writes on its version."""
        self._seen[path] = await self._fetch(path)
        if self._seen[path][0] == client_id:
            return  # our own earlier attempt landed; only its answer was lost
        log.warning("vault.cas_conflict", sink=self.name, path=self._url(path), version=cas)
        raise SinkError(
            self.name,
            f"another writer changed {self._url(path)} after version {cas} was read "
            "(check-and-set refused the write)",
            retryable=True,
        )

    async def _send(
        self,
        method: str,
        path: str,
        verb: str,
        body: dict[str, Any] | None = None,
        *,
        params: dict[str, str] | None = None,
        operation: str = "data",
    ) -> httpx.Response:
        async def send() -> tuple[str, httpx.Response]:
            token = await self._tokens.current(self._http)  # a login, the first time
            headers = self._connection.headers(token)
            url = self._url(path, operation)
            return token, await self._http.request(
                method, url, json=body, params=params, headers=headers
            )

        try:
            token, response = await send()
            if response.status_code == 403 and await self._tokens.replace_if_dead(
                self._http, token
            ):
                _, response = await send()  # the login's token had expired: once more, new one
            return response
        except httpx.TransportError as exc:
            raise self._transport_error(exc, verb, path) from None

    # --- errors --------------------------------------------------------------------------------

    def _raise_for(self, response: httpx.Response, verb: str, path: str) -> None:
        status = response.status_code
        if response.is_success:
            return
        if status == 403:
            raise SinkError(self.name, self._denied(verb, path))
        errors = errors_of(response)
        if status == 404:
            raise SinkError(self.name, f"no KV mount {self._mount!r} at {self._where()}: {errors}")
        message = f"cannot {verb} {self._url(path)}: HTTP {status}: {errors}"
        raise SinkError.from_response(self.name, message, status, response.headers)

    def _denied(self, verb: str, path: str) -> str:
        folder = "/".join(filter(None, (self._mount, "data", self._prefix, "*")))
        login = self._connection.login
        token = "the token" + (f" of the {describe(login)}" if login else "")
        return (
            f"permission denied: {token} may not {verb} {self._url(path)} at "
            f"{self._where()}; its policy needs capabilities [{_CAPABILITIES[verb]}] on "
            f'path "{folder}" (KV v2 policies name <mount>/data/... paths, not <mount>/...)'
        )

    def _transport_error(
        self, exc: httpx.TransportError, verb: str, path: str, *, raw: bool = False
    ) -> SinkError:
        if _tls_verification_failed(exc):
            return SinkError(
                self.name,
                f"TLS verification of {self._where()} failed ({exc}); "
                "set VAULT_CACERT to the CA certificate that signed the server's certificate "
                "(or VAULT_CAPATH to a directory of CA certificates)",
            )
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        shown = path if raw else self._url(path)
        message = f"cannot {verb} {shown}: Vault at {self._where()}: {reason}"
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
            return Unreachable(self.name, message)  # nothing was sent
        return SinkError(self.name, message, retryable=True)

    def _written_version(self, response: httpx.Response, path: str) -> int:
        version = _version(response_json(response).get("data"), in_metadata=False)
        if not version:
            # A KV version 1 mount accepts the same write and answers 204 without a version.
            raise SinkError(self.name, f"{self._mount!r} at {self._where()} is not a KV v2 mount")
        return version

    # --- paths ---------------------------------------------------------------------------------

    def _key_path(self, service: str, credential: str) -> str:
        for part in (service, credential):
            # Names are validated by the manifest; this guards the URL against anything else.
            if part in ("", ".", "..") or not set(part) <= _NAME_CHARS:
                raise SinkError(self.name, f"invalid name {part!r} for a Vault path")
        return "/".join(filter(None, (self._prefix, service, credential)))

    def _url(self, path: str, operation: str = "data") -> str:
        """The API path of a key, relative to `/v1/`; also how messages name it."""
        return f"{self._mount}/{operation}/{path}"

    def _where(self) -> str:
        namespace = self._connection.namespace
        return self._connection.address + (f" (namespace {namespace})" if namespace else "")


def _custom_metadata(data: dict[str, Any]) -> dict[str, str]:
    """The key's custom metadata from a read's `data.metadata`; {} when it has none."""
    metadata = data.get("metadata")
    custom = metadata.get("custom_metadata") if isinstance(metadata, dict) else None
    if not isinstance(custom, dict):
        return {}
    return {str(k): str(v) for k, v in custom.items()}


def _write_body(data: dict[str, Any], cas: int) -> dict[str, Any]:
    return {"options": {"cas": cas}, "data": data}


def _cas_mismatch(response: httpx.Response) -> bool:
    # Real Vault answers 400 with this message; some proxies and Vault Enterprise answer 412.
    if response.status_code == 412:
        return True
    errors = response_json(response).get("errors") if response.status_code == 400 else None
    return any("check-and-set" in str(error) for error in errors or ())


def _version(data: Any, *, in_metadata: bool = True) -> int:
    """The version in a read's `data.metadata`, or in a write's `data`; 0 when absent."""
    if in_metadata:
        data = data.get("metadata") if isinstance(data, dict) else None
    version = data.get("version") if isinstance(data, dict) else None
    return version if isinstance(version, int) else 0


def _tls_verification_failed(exc: BaseException) -> bool:
    # httpx raises ConnectError from ssl.SSLCertVerificationError a level or two down.
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
