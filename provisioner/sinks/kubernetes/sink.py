"""The `kubernetes` sink: one `Opaque` Secret per credential, in one namespace.

The Secret's `data` keys are the record's fields (`client_id`, `secret`, `service`, ..., and a
project key's `project_key_id` and Kafka fields; lists as JSON text, absent values left out; the
multi-line `kafka_properties` as it is), labelled `app.kubernetes.io/managed-by:
streamkap-provisioner` and annotated with the credential's key and the run's owner. Writes are
create-then-replace: a replace names the `resourceVersion` it read, so a concurrent writer makes
it fail with `409 Conflict` and the sink reads again and retries, never overwriting unnoticed. A
Secret without the managed-by label was not made by this tool, and one annotated with another
owner (none: the default owner) belongs to another run: neither is ever written, restored over
or deleted.

An undo (`restore`) puts the data the write replaced back, or deletes a Secret the write created,
only while the Secret still holds the written identity (a project key's id, else the client id);
deletes carry a `resourceVersion` precondition, so a Secret changed since it was checked stays.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, ClassVar

import anyio
import httpx
import structlog

from provisioner.errors import SinkError, UsageError
from provisioner.http.retry import Sleep
from provisioner.logs import cut
from provisioner.model import DEFAULT_OWNER, SinkRecord
from provisioner.sinks._scaffold import RemoteSink, Unreachable, response_json
from provisioner.sinks._unsettled import Unsettled
from provisioner.sinks.base import NOTHING, Previous, SinkContext, SinkOptions
from provisioner.sinks.kubernetes import config
from provisioner.sinks.kubernetes.config import KubernetesSinkOptions

__all__ = [
    "KEY_ANNOTATION",
    "MANAGED_BY",
    "MANAGER",
    "OWNER_ANNOTATION",
    "KubernetesSink",
    "KubernetesSinkOptions",
]

log = structlog.get_logger("provisioner.sinks.kubernetes")

MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGER = "streamkap-provisioner"
KEY_ANNOTATION = "streamkap-provisioner/key"
OWNER_ANNOTATION = "streamkap-provisioner/owner"
_LIST_FIELDS = ("role_ids", "permission_ids")
_VERBS = "get, list, create, update, patch, delete"


# Never a credential's Secret name (those hold the service and credential): only probed by check.
_CHECK_NAME = "provisioner-write-check"


class KubernetesSink(RemoteSink):
    """Secrets in a Kubernetes namespace, written with create-then-replace on resourceVersion."""

    options_model: ClassVar[type[SinkOptions]] = KubernetesSinkOptions
    kind = "kubernetes"
    #: `k8s:NAMESPACE`, parsed where the options are defined.
    options_from_uri = staticmethod(config.options_from_uri)

    def __init__(
        self,
        name: str,
        options: KubernetesSinkOptions,
        context: SinkContext,
        *,
        sleep: Sleep = anyio.sleep,
    ) -> None:
        if context.transport is not None:
            # --simulate hands sinks the Vault stub; a real cluster must not be written instead.
            raise UsageError(
                f"sink {name!r}: the kubernetes sink has no in-process simulator, so it cannot "
                "be used with --simulate; serve its stub with `provisioner simulate --kube-port "
                "P --kubeconfig FILE` and apply with KUBECONFIG=FILE, without --simulate"
            )
        super().__init__(name, context, sleep)
        self._namespace = options.namespace
        self._fields = options.field_map()
        self._template = options.name
        connection = config.connect(context)
        self._http = connection.client
        self._where = connection.where
        self._max_attempts = context.max_attempts
        self._unsettled = Unsettled()

    def __repr__(self) -> str:
        return f"KubernetesSink({self.name!r}, namespace={self._namespace!r})"

    def _held(self, secret: dict[str, Any]) -> str | None:
        """The identity a Secret holds (project key id, else client id), read through the
        sink's field mapping."""
        return self._fields.identity(_from_data(secret.get("data")))

    # --- the protocol ----------------------------------------------------------------------------

    async def check(self) -> SinkError | None:
        """Whether the cluster accepts our credentials and lets us read secrets in the namespace:
        one GET of a Secret name no credential uses (404 is the answer hoped for)."""
        return await self._checked("check", lambda: self._get(_CHECK_NAME))

    async def read(self, service: str, credential: str) -> str | None:
        """The identity the Secret holds (project key id, else client id); None when there is
        no Secret, or it holds no whole record."""
        found = await self.read_record(service, credential)
        return found.identity if found is not None else None

    async def read_record(self, service: str, credential: str) -> SinkRecord | None:
        """The stored record, secret included; None when absent or not a record."""
        name = self._secret_name(service, credential)
        current = await self._retrying("read", lambda: self._get(name))
        if current is None:
            return None
        self._check_ours(current, name, f"{service}/{credential}")
        document = _from_data(current.get("data"))
        self._fields.remember(document)
        return self._fields.from_document(document, service, credential)

    async def write(self, record: SinkRecord) -> Previous:
        """Create the Secret, or replace it on the resourceVersion just read (409: read again)."""
        name = self._secret_name(record.service, record.credential)
        data = _to_data(self._fields.to_document(record))
        async with self._lock(name):
            seen: Previous | None = None
            try:
                for _ in range(max(self._max_attempts, 1)):
                    current = await self._get(name)
                    if current is None:
                        seen = NOTHING
                        answer = await self._send(
                            "POST", self._collection(), "create", self._body(name, record.key, data)
                        )
                        if answer.status_code == 409:  # AlreadyExists: made since we looked
                            continue
                        self._raise_for(answer, "create", name)
                    else:
                        self._check_ours(current, name, record.key)
                        seen = Previous(self._held(current), _data_of(current))
                        answer = await self._send(
                            "PUT",
                            self._path(name),
                            "update",
                            self._body(name, record.key, data, current),
                        )
                        if answer.status_code == 409:  # Conflict: another writer since our read
                            log.warning(
                                "kubernetes.conflict", sink=self.name, secret=self._shown(name)
                            )
                            continue
                        self._raise_for(answer, "update", name)
                    return self._unsettled.settled(name, record.identity, seen)
                raise SinkError(
                    self.name,
                    f"Secret {self._shown(name)} kept changing under us (409 Conflict on every "
                    "attempt)",
                    retryable=True,
                )
            except SinkError:
                self._unsettled.failed(name, seen)
                raise

    async def restore(
        self, service: str, credential: str, client_id: str, previous: Previous
    ) -> None:
        """While the Secret holds `client_id`: put the replaced data back, or delete the Secret
        when the write created it."""
        name = self._secret_name(service, credential)
        async with self._lock(name):
            await self._retrying("restore", lambda: self._restore_once(name, client_id, previous))

    async def delete(self, service: str, credential: str, client_id: str) -> None:
        """Delete the Secret if it still holds `client_id` (and this tool made it)."""
        await self.restore(service, credential, client_id, NOTHING)

    async def aclose(self) -> None:
        """Close the connection pool; nothing is buffered."""
        await self._http.aclose()

    # --- Secrets API calls -----------------------------------------------------------------------

    async def _restore_once(self, name: str, client_id: str, previous: Previous) -> None:
        current = await self._get(name)
        if current is None or self._held(current) != client_id or not _managed(current):
            return  # gone, or someone else has written since: theirs stays
        if (_annotation(current, OWNER_ANNOTATION) or DEFAULT_OWNER) != self.owner:
            return  # another owner's: never restored over nor deleted
        version = _resource_version(current)
        content = previous.content
        if isinstance(content, dict) and content:
            key = _annotation(current, KEY_ANNOTATION) or ""
            body = self._body(name, key, {str(k): str(v) for k, v in content.items()}, current)
            answer = await self._send("PUT", self._path(name), "update", body)
        else:
            options = {
                "kind": "DeleteOptions",
                "apiVersion": "v1",
                "preconditions": {"resourceVersion": version},
            }
            answer = await self._send("DELETE", self._path(name), "delete", options)
            if answer.status_code == 404:
                return
        if answer.status_code == 409:
            # Changed since our read: read again (it may no longer hold client_id).
            raise SinkError(
                self.name, f"Secret {self._shown(name)} changed during the undo", retryable=True
            )
        self._raise_for(
            answer, "update" if isinstance(content, dict) and content else "delete", name
        )

    async def _get(self, name: str) -> dict[str, Any] | None:
        answer = await self._send("GET", self._path(name), "get")
        if answer.status_code == 404:
            return None
        self._raise_for(answer, "get", name)
        body = response_json(answer)
        if body.get("kind") != "Secret":
            raise SinkError(
                self.name, f"{self._where} answered GET {self._path(name)} with no Secret"
            )
        return body

    async def _send(
        self, method: str, path: str, verb: str, body: dict[str, Any] | None = None
    ) -> httpx.Response:
        headers = {"Content-Type": "application/json"} if body is not None else None
        try:
            return await self._http.request(method, path, json=body, headers=headers)
        except httpx.TransportError as exc:
            reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            message = f"cannot {verb} Secret at {path}: {self._where}: {reason}"
            if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
                raise Unreachable(self.name, message) from None  # nothing was sent
            raise SinkError(self.name, message, retryable=True) from None
        except Exception as exc:
            # Credentials that cannot be had: an exec plugin that fails, a token file gone.
            message = f"cannot authenticate to {self._where}: {type(exc).__name__}: {exc}"
            raise SinkError(self.name, message) from None

    # --- errors ----------------------------------------------------------------------------------

    def _raise_for(self, response: httpx.Response, verb: str, name: str) -> None:
        status = response.status_code
        if response.is_success:
            return
        body = response_json(response)
        reason = cut(str(body.get("message") or response.reason_phrase))
        shown = self._shown(name)
        if status == 401:
            raise SinkError(
                self.name,
                f"{self._where} refused our credentials (401 Unauthorized): the token expired "
                "or is not valid for this cluster",
            )
        if status == 403:
            raise SinkError(
                self.name,
                f"forbidden: may not {verb} secrets in namespace {self._namespace!r} at "
                f"{self._where} ({reason}); the ServiceAccount (or user) needs a Role granting "
                f"[{_VERBS}] on secrets in {self._namespace!r}, bound by a RoleBinding "
                "(see deploy/kubernetes/rbac.yaml)",
            )
        if status == 404 and verb == "create":
            raise SinkError(
                self.name, f"cannot create Secret {shown}: namespace does not exist? ({reason})"
            )
        message = f"cannot {verb} Secret {shown}: HTTP {status}: {reason}"
        raise SinkError.from_response(self.name, message, status, response.headers)

    def _check_ours(self, current: dict[str, Any], name: str, key: str) -> None:
        if not _managed(current):
            raise SinkError(
                self.name,
                f"Secret {self._shown(name)} exists and was not created by {MANAGER} (it lacks "
                f"the label {MANAGED_BY}={MANAGER}): it is never overwritten; delete or rename "
                "it, or change the sink's `name` template",
            )
        held = _annotation(current, KEY_ANNOTATION)
        if held and held != key:
            raise SinkError(
                self.name,
                f"Secret {self._shown(name)} holds credential {held!r}, not {key!r}: both "
                "names make the same Secret name; rename one or change the `name` template",
            )
        self.check_owner(_annotation(current, OWNER_ANNOTATION), f"Secret {self._shown(name)}")

    # --- names and bodies ------------------------------------------------------------------------

    def _secret_name(self, service: str, credential: str) -> str:
        name = config.render_name(self._template, service, credential)
        if not config.valid_name(name):
            raise SinkError(
                self.name,
                f"{name!r} (for {service}/{credential}) is not a valid Secret name (a DNS-1123 "
                "subdomain: lower case letters, digits, '-' and '.', starting and ending with a "
                "letter or digit); rename the credential or change the `name` template",
            )
        return name

    def _collection(self) -> str:
        return f"/api/v1/namespaces/{self._namespace}/secrets"

    def _path(self, name: str) -> str:
        return f"{self._collection()}/{name}"

    def _shown(self, name: str) -> str:
        return f"{self._namespace}/{name}"

    def _body(
        self,
        name: str,
        key: str,
        data: dict[str, str],
        current: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The whole Secret to create, or to replace `current` with (its other labels kept)."""
        before = _metadata(current) if current is not None else {}
        labels = before.get("labels")
        labels = labels if isinstance(labels, dict) else {}
        annotations = before.get("annotations")
        annotations = annotations if isinstance(annotations, dict) else {}
        metadata: dict[str, Any] = {
            "name": name,
            "namespace": self._namespace,
            "labels": {**labels, MANAGED_BY: MANAGER},
            "annotations": {
                **annotations,
                **({KEY_ANNOTATION: key} if key else {}),
                OWNER_ANNOTATION: self.owner,
            },
        }
        if current is not None:
            metadata["resourceVersion"] = _resource_version(current)
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": metadata,
            "type": "Opaque",
            "data": data,
        }


def _annotation(secret: dict[str, Any], name: str) -> str | None:
    annotations = _metadata(secret).get("annotations")
    value = annotations.get(name) if isinstance(annotations, dict) else None
    return value if isinstance(value, str) else None


def _to_data(document: dict[str, object]) -> dict[str, str]:
    """The record's fields as Secret data: text, base64-encoded; lists as JSON, None left out."""
    data: dict[str, str] = {}
    for key, value in document.items():
        if value is None:
            continue
        text = value if isinstance(value, str) else json.dumps(value)
        data[key] = base64.b64encode(text.encode()).decode("ascii")
    return data


def _from_data(data: object) -> dict[str, object]:
    """Secret data read back as the record's fields (undecodable values are left out)."""
    document: dict[str, object] = {}
    if not isinstance(data, dict):
        return document
    for key, value in data.items():
        try:
            text = base64.b64decode(str(value), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            continue
        if key in _LIST_FIELDS:
            try:
                document[key] = json.loads(text)
            except ValueError:
                continue
        else:
            document[key] = text
    return document


def _data_of(secret: dict[str, Any]) -> dict[str, str]:
    data = secret.get("data")
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _metadata(secret: dict[str, Any]) -> dict[str, Any]:
    metadata = secret.get("metadata")
    return metadata if isinstance(metadata, dict) else {}


def _managed(secret: dict[str, Any]) -> bool:
    labels = _metadata(secret).get("labels")
    return isinstance(labels, dict) and labels.get(MANAGED_BY) == MANAGER


def _resource_version(secret: dict[str, Any]) -> str:
    return str(_metadata(secret).get("resourceVersion") or "")
