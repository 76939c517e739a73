"""The Kubernetes stub's world: Secrets by namespace and name, the API server's rules for them
(names, data keys, resourceVersion, merge and apply patches, label selectors), faults, call log.
"""

from __future__ import annotations

import base64
import binascii
import copy
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = ["KUBE_TOKEN", "KubeCall", "KubeError", "KubeState"]

#: The bearer token the stub accepts unless told otherwise.
KUBE_TOKEN = "sim-kube-token"
_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_DATA_KEY = re.compile(r"[-._a-zA-Z0-9]+")
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class KubeError(Exception):
    """An error answer: a `Status` object, as the API server gives it."""

    def __init__(
        self, code: int, reason: str, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(code, message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            body["details"] = self.details
        return body


@dataclass(frozen=True)
class KubeCall:
    """One call the stub answered."""

    method: str
    path: str
    status: int
    content_type: str = ""


@dataclass
class KubeState:
    """The Secrets the stub holds, by (namespace, name), and its faults."""

    namespaces: set[str] = field(default_factory=lambda: {"default"})
    # Every namespace exists: `provisioner simulate` cannot know which one its user will name.
    every_namespace: bool = False
    tokens: set[str] = field(default_factory=lambda: {KUBE_TOKEN})
    secrets: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    conflicts: int = 0  # the next N replaces (PUT) meet a concurrent write: 409
    failures: list[int] = field(default_factory=list)  # statuses to answer the next calls with
    forbidden: set[tuple[str, str]] = field(default_factory=set)  # (verb, namespace): 403
    _calls: list[KubeCall] = field(default_factory=list)
    _version: int = 1000
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # --- for tests --------------------------------------------------------------------------

    def calls(self) -> list[KubeCall]:
        with self._lock:
            return list(self._calls)

    def write_calls(self) -> list[KubeCall]:
        return [call for call in self.calls() if call.method in _WRITES]

    def reset_calls(self) -> None:
        with self._lock:
            self._calls.clear()

    def fail_next(self, status: int, count: int = 1) -> None:
        self.failures.extend([status] * count)

    def forbid(self, verb: str, namespace: str) -> None:
        self.forbidden.add((verb, namespace))

    def put(
        self,
        namespace: str,
        name: str,
        data: dict[str, str],
        *,
        labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Store a Secret as another writer would (`data` in plain text)."""
        encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
        body = {
            "metadata": {"name": name, "labels": labels or {}, "annotations": annotations or {}},
            "type": "Opaque",
            "data": encoded,
        }
        self.namespaces.add(namespace)
        return self.create(namespace, body)

    def decoded(self, namespace: str, name: str) -> dict[str, str] | None:
        """A Secret's data in plain text, or None when there is no such Secret."""
        secret = self.secrets.get((namespace, name))
        if secret is None:
            return None
        return {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}

    # --- the API's rules --------------------------------------------------------------------

    def record(self, call: KubeCall) -> None:
        with self._lock:
            self._calls.append(call)

    def next_version(self) -> str:
        with self._lock:
            self._version += 1
            return str(self._version)

    def list_version(self) -> str:
        """The resourceVersion a list answer carries: the latest one given out."""
        with self._lock:
            return str(self._version)

    def create(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        metadata = _metadata(body)
        name = metadata.get("name")
        if not isinstance(name, str) or not name:
            raise _invalid("", "metadata.name: Required value: name or generateName is required")
        if namespace not in self.namespaces and not self.every_namespace:
            raise KubeError(
                404,
                "NotFound",
                f'namespaces "{namespace}" not found',
                {"name": namespace, "kind": "namespaces"},
            )
        if (namespace, name) in self.secrets:
            raise KubeError(
                409,
                "AlreadyExists",
                f'secrets "{name}" already exists',
                {"name": name, "kind": "secrets"},
            )
        secret = self._valid(namespace, name, body)
        secret["metadata"]["uid"] = str(uuid.uuid4())
        secret["metadata"]["creationTimestamp"] = _now()
        self.secrets[(namespace, name)] = secret
        return copy.deepcopy(secret)

    def get(self, namespace: str, name: str) -> dict[str, Any]:
        secret = self.secrets.get((namespace, name))
        if secret is None:
            raise _not_found(name)
        return copy.deepcopy(secret)

    def replace(self, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        current = self.secrets.get((namespace, name))
        if current is None:
            raise _not_found(name)
        if _metadata(body).get("name") != name:
            raise KubeError(
                400, "BadRequest", "the name of the object does not match the name on the URL"
            )
        if self.conflicts > 0:  # another writer gets in first
            self.conflicts -= 1
            current["metadata"]["resourceVersion"] = self.next_version()
        wanted = _metadata(body).get("resourceVersion")
        if wanted and wanted != current["metadata"]["resourceVersion"]:
            raise _conflict(name)
        secret = self._valid(namespace, name, body)
        if current.get("type") != secret["type"]:
            raise _invalid(name, "type: Invalid value: field is immutable")
        for kept in ("uid", "creationTimestamp"):
            secret["metadata"][kept] = current["metadata"][kept]
        self.secrets[(namespace, name)] = secret
        return copy.deepcopy(secret)

    def merge_patch(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        current = self.get(namespace, name)
        wanted = _metadata(patch).get("resourceVersion")
        if wanted and wanted != current["metadata"]["resourceVersion"]:
            raise _conflict(name)
        merged = _merge(current, patch)
        merged["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        return self.replace(namespace, name, merged)

    def apply(
        self, namespace: str, name: str, patch: dict[str, Any], manager: str
    ) -> dict[str, Any]:
        """Server-side apply, simplified: create, or merge the applied fields in."""
        if patch.get("kind") != "Secret" or patch.get("apiVersion") != "v1":
            raise KubeError(400, "BadRequest", "apply needs apiVersion v1 and kind Secret")
        if _metadata(patch).get("name") != name:
            raise KubeError(
                400, "BadRequest", "the name of the object does not match the name on the URL"
            )
        managed = [{"manager": manager, "operation": "Apply", "apiVersion": "v1"}]
        if (namespace, name) not in self.secrets:
            self.create(namespace, patch)
            self.secrets[(namespace, name)]["metadata"]["managedFields"] = managed
            return self.get(namespace, name)
        return self.merge_patch(namespace, name, {**patch, "metadata": _metadata(patch)})

    def delete(self, namespace: str, name: str, options: dict[str, Any]) -> dict[str, Any]:
        current = self.get(namespace, name)
        preconditions = options.get("preconditions") or {}
        wanted_version = preconditions.get("resourceVersion")
        wanted_uid = preconditions.get("uid")
        if (wanted_version and wanted_version != current["metadata"]["resourceVersion"]) or (
            wanted_uid and wanted_uid != current["metadata"]["uid"]
        ):
            raise KubeError(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on secrets "{name}": Precondition failed: '
                f"ResourceVersion in precondition: {wanted_version}, "
                f"ResourceVersion in object meta: {current['metadata']['resourceVersion']}",
                {"name": name, "kind": "secrets"},
            )
        del self.secrets[(namespace, name)]
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": {"name": name, "kind": "secrets", "uid": current["metadata"]["uid"]},
        }

    def list(self, namespace: str | None, selector: str) -> list[dict[str, Any]]:
        match = _selector(selector)
        return [
            copy.deepcopy(secret)
            for (ns, _), secret in sorted(self.secrets.items())
            if (namespace is None or ns == namespace) and match(secret["metadata"]["labels"])
        ]

    def _valid(self, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """The stored form of a Secret body: validated, stringData folded into data."""
        if len(name) > 253 or not _NAME.fullmatch(name):
            raise _invalid(
                name,
                f'metadata.name: Invalid value: "{name}": a lowercase RFC 1123 '
                "subdomain must consist of lower case alphanumeric characters, '-' "
                "or '.', and must start and end with an alphanumeric character",
            )
        given_ns = _metadata(body).get("namespace")
        if given_ns and given_ns != namespace:
            raise KubeError(
                400,
                "BadRequest",
                "the namespace of the provided object does not match the namespace sent on the "
                "request",
            )
        data = dict(body.get("data") or {})
        for key, value in data.items():
            if not _DATA_KEY.fullmatch(str(key)):
                raise _invalid(name, f"data[{key}]: Invalid value: a valid config key")
            try:
                base64.b64decode(str(value), validate=True)
            except binascii.Error:
                raise KubeError(400, "BadRequest", f"illegal base64 data in data[{key}]") from None
        for key, value in (body.get("stringData") or {}).items():
            data[str(key)] = base64.b64encode(str(value).encode()).decode()
        metadata = _metadata(body)
        return {
            "kind": "Secret",
            "apiVersion": "v1",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "resourceVersion": self.next_version(),
                "labels": dict(metadata.get("labels") or {}),
                "annotations": dict(metadata.get("annotations") or {}),
            },
            "type": body.get("type") or "Opaque",
            "data": data,
        }


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _metadata(body: dict[str, Any]) -> dict[str, Any]:
    metadata = body.get("metadata")
    return metadata if isinstance(metadata, dict) else {}


def _not_found(name: str) -> KubeError:
    return KubeError(
        404, "NotFound", f'secrets "{name}" not found', {"name": name, "kind": "secrets"}
    )


def _conflict(name: str) -> KubeError:
    return KubeError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on secrets "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again",
        {"name": name, "kind": "secrets"},
    )


def _invalid(name: str, cause: str) -> KubeError:
    return KubeError(
        422, "Invalid", f'Secret "{name}" is invalid: {cause}', {"name": name, "kind": "Secret"}
    )


def _merge(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (for a Secret, strategic merge patch behaves the same)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge(result.get(key), value)
    return result


def _selector(text: str) -> Callable[[dict[str, str]], bool]:
    """Equality-based label selectors: `k=v`, `k==v`, `k!=v`, `k`, `!k`, comma-separated."""
    terms: list[tuple[str, str, str | None]] = []  # (operator, key, value)
    for term in filter(None, (t.strip() for t in text.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            terms.append(("!=", key.strip(), value.strip()))
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            terms.append(("=", key.strip(), value.strip()))
        elif term.startswith("!"):
            terms.append(("!", term[1:].strip(), None))
        else:
            terms.append(("exists", term, None))

    def matches(labels: dict[str, str]) -> bool:
        for operator, key, value in terms:
            held = labels.get(key)
            if operator == "!=" and held == value:
                return False
            if operator == "=" and held != value:
                return False
            if operator == "!" and key in labels:
                return False
            if operator == "exists" and key not in labels:
                return False
        return True

    return matches
