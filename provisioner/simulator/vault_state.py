"""The Vault stub's world: KV v2 secrets per namespace and mount, tokens, faults and a call log.

Every public method takes the one lock, so tests may inspect or change the state from another
thread while uvicorn serves it; no method holds the lock across an `await`.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from provisioner.simulator.faults import FaultConfig, Refusal, ServiceState

#: The stub's root token: may do anything, in every namespace.
VAULT_ROOT_TOKEN = "sim-vault-root-token"
#: What a KV v2 mount answers when `options.cas` is not the current version (real Vault: 400).
CAS_MISMATCH = "check-and-set parameter did not match the current version"
#: Path segments that follow a KV v2 mount, naming the operation.
OPERATIONS = frozenset({"data", "metadata", "delete", "destroy"})

Clock = Callable[[], datetime]
# A policy as path glob -> capabilities, e.g. {"secret/data/streamkap/*": ["create", "read"]}.
Policy = Mapping[str, Collection[str]]
SecretKey = tuple[str, str, str]  # (namespace, mount, path)


class CasMismatch(Exception):
    """A write's `options.cas` was not the secret's current version."""


@dataclass
class Version:
    """One version of a secret; `data` is None once destroyed."""

    number: int
    data: dict[str, Any] | None
    created_time: datetime
    deletion_time: datetime | None = None
    destroyed: bool = False

    @property
    def live(self) -> bool:
        return self.deletion_time is None and not self.destroyed


@dataclass
class Secret:
    """A KV v2 key: its versions and metadata."""

    created_time: datetime
    updated_time: datetime
    versions: dict[int, Version] = field(default_factory=dict)

    @property
    def current_version(self) -> int:
        return max(self.versions, default=0)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _policy_pattern(glob: str) -> re.Pattern[str]:
    # Vault's globs: `+` is one path segment, a trailing `*` any suffix.
    body = re.escape(glob.removesuffix("*")).replace(r"\+", "[^/]+")
    return re.compile(body + (".*" if glob.endswith("*") else ""))


def _same(given: str, expected: str) -> bool:
    return secrets.compare_digest(given.encode(), expected.encode())


class VaultState(ServiceState):
    """A simulated Vault server with KV v2 mounts; `create_vault_app` serves it.

    `mounts=None` makes every path's first segments before `data/`, `metadata/`... a KV v2 mount,
    so the in-process stub of `--simulate` serves whatever mounts the manifests name.
    """

    def __init__(
        self,
        *,
        mounts: Iterable[str] | None = ("secret",),
        root_token: str = VAULT_ROOT_TOKEN,
        faults: FaultConfig | None = None,
        now: Clock = _utcnow,
        cas_mismatch_status: int = 400,
    ) -> None:
        super().__init__(now, faults)
        self.mounts = None if mounts is None else frozenset(m.strip("/") for m in mounts)
        self.cas_mismatch_status = cas_mismatch_status
        self._tokens: dict[str, Policy | None] = {root_token: None}
        self._secrets: dict[SecretKey, Secret] = {}
        self.fail_writes = False  # writes and deletes answer 503; reads still work

    # Faults ------------------------------------------------------------------------------------

    def refusal(self, *, write: bool) -> Refusal | None:
        """The fault answer this call gets instead of being done, if any."""
        now = self.now()
        with self._lock:
            if write and self.fail_writes:
                return Refusal(503, "Vault is sealed")
            return self._decider.before_call(now, token_call=False)

    # Tokens ------------------------------------------------------------------------------------

    def add_token(self, token: str, policy: Policy | None = None) -> None:
        """Accept `token`, limited to `policy` (path glob -> capabilities); None: root."""
        with self._lock:
            self._tokens[token] = None if policy is None else dict(policy)

    def revoke_token(self, token: str) -> None:
        with self._lock:
            self._tokens.pop(token, None)

    def known_token(self, token: str) -> bool:
        with self._lock:
            tokens = list(self._tokens)
        return any(_same(token, known) for known in tokens)

    def allowed(self, token: str, path: str, capabilities: Collection[str]) -> bool:
        """Whether a known token has one of `capabilities` on the API path (no `/v1/`)."""
        with self._lock:
            policy = next((p for t, p in self._tokens.items() if _same(token, t)), {})
        if policy is None:
            return True
        return any(
            not set(capabilities).isdisjoint(granted) and _policy_pattern(glob).fullmatch(path)
            for glob, granted in policy.items()
        )

    # Routing -----------------------------------------------------------------------------------

    def split(self, path: str) -> tuple[str, str, str] | None:
        """An API path as (mount, operation, key path); None when no mount serves it."""
        parts = path.strip("/").split("/")
        # Shortest mount first, so a key path may itself hold a segment named `data`.
        for index in range(1, len(parts)):
            mount = "/".join(parts[:index])
            if parts[index] in OPERATIONS and self._is_mount(mount):
                return mount, parts[index], "/".join(parts[index + 1 :])
        return None

    def _is_mount(self, mount: str) -> bool:
        return self.mounts is None or mount in self.mounts

    # KV v2 -------------------------------------------------------------------------------------

    def read(self, key: SecretKey, version: int = 0) -> Version | None:
        """A version (0: the latest), deleted or not; None when there is no such version."""
        with self._lock:
            secret = self._secrets.get(key)
            if secret is None:
                return None
            found = secret.versions.get(version or secret.current_version)
            return None if found is None else _copy(found)

    def write(self, key: SecretKey, data: dict[str, Any], cas: int | None) -> Version:
        """Add a version; with `cas`, only if it is the current version (0: no secret yet)."""
        now = self.now()
        with self._lock:
            secret = self._secrets.get(key)
            current = secret.current_version if secret else 0
            if cas is not None and cas != current:
                raise CasMismatch(CAS_MISMATCH)
            if secret is None:
                secret = self._secrets[key] = Secret(now, now)
            secret.updated_time = now
            version = Version(current + 1, dict(data), now)
            secret.versions[version.number] = version
            return _copy(version)

    def delete_versions(self, key: SecretKey, versions: Iterable[int] | None = None) -> None:
        """Soft-delete versions (None: the latest); their data stays, reads see none."""
        now = self.now()
        with self._lock:
            secret = self._secrets.get(key)
            if secret is None:
                return
            for number in [secret.current_version] if versions is None else versions:
                found = secret.versions.get(number)
                if found is not None and found.deletion_time is None:
                    found.deletion_time = now

    def destroy_versions(self, key: SecretKey, versions: Iterable[int]) -> None:
        """Destroy versions: their data is gone for good."""
        with self._lock:
            secret = self._secrets.get(key)
            for number in versions:
                found = secret.versions.get(number) if secret else None
                if found is not None:
                    found.destroyed, found.data = True, None

    def metadata(self, key: SecretKey) -> Secret | None:
        """The key's metadata and versions, or None."""
        with self._lock:
            secret = self._secrets.get(key)
            if secret is None:
                return None
            versions = {n: _copy(v) for n, v in secret.versions.items()}
            return Secret(secret.created_time, secret.updated_time, versions)

    def delete_metadata(self, key: SecretKey) -> None:
        """Remove a key with every version."""
        with self._lock:
            self._secrets.pop(key, None)

    def list_keys(self, namespace: str, mount: str, folder: str) -> list[str]:
        """Names directly under `folder` (sub-folders end in `/`), as `LIST .../metadata/` does."""
        prefix = folder.strip("/") + "/" if folder.strip("/") else ""
        with self._lock:
            paths = [p for ns, m, p in self._secrets if ns == namespace and m == mount]
        names = {
            rest.split("/")[0] + ("/" if "/" in rest else "")
            for rest in (p.removeprefix(prefix) for p in paths if p.startswith(prefix))
        }
        return sorted(names)

    # Persistence -------------------------------------------------------------------------------

    def saved(self) -> dict[SecretKey, Secret]:
        """Every key with its versions, copied: what a later process needs to carry on."""
        with self._lock:
            return {
                key: Secret(
                    s.created_time, s.updated_time, {n: _copy(v) for n, v in s.versions.items()}
                )
                for key, s in self._secrets.items()
            }

    def restore(self, saved: Mapping[SecretKey, Secret]) -> None:
        """Put back the keys an earlier process saved."""
        with self._lock:
            self._secrets.update(saved)

    # For tests ---------------------------------------------------------------------------------

    def secret(self, path: str, *, mount: str = "secret", namespace: str = "") -> Any:
        """The latest live data at `mount/data/path`, or None (deleted, destroyed, absent)."""
        found = self.read((namespace, mount, path))
        return found.data if found is not None and found.live else None

    def paths(self, *, mount: str = "secret", namespace: str = "") -> list[str]:
        """Every key path in a mount, sorted, deleted ones included."""
        with self._lock:
            return sorted(p for ns, m, p in self._secrets if ns == namespace and m == mount)


def _copy(version: Version) -> Version:
    data = None if version.data is None else dict(version.data)
    return Version(
        version.number, data, version.created_time, version.deletion_time, version.destroyed
    )


def _copy_secret(secret: Secret) -> Secret:
    versions = {number: _copy(version) for number, version in secret.versions.items()}
    return Secret(secret.created_time, secret.updated_time, versions)
