"""The Vault stub's world: KV v2 secrets per namespace and mount, tokens (static, or issued by
the kubernetes and approle logins, with a lease), faults and a call log.

Every public method takes the one lock, so tests may inspect or change the state from another
thread while uvicorn serves it; no method holds the lock across an `await`.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from provisioner.simulator.faults import FaultConfig, Refusal, ServiceState

#: The stub's root token: may do anything, in every namespace.
VAULT_ROOT_TOKEN = "sim-vault-root-token"
#: What a KV v2 mount answers when `options.cas` is not the current version (real Vault: 400).
CAS_MISMATCH = "check-and-set parameter did not match the current version"
#: Path segments that follow a KV v2 mount, naming the operation.
OPERATIONS = frozenset({"data", "metadata", "delete", "destroy"})

#: The auth methods whose `POST /v1/auth/<mount>/login` the stub serves.
AuthMethod = Literal["kubernetes", "approle"]
#: Auth mounts enabled by default: each method at its usual path.
DEFAULT_AUTH_MOUNTS: Mapping[str, AuthMethod] = {"kubernetes": "kubernetes", "approle": "approle"}

Clock = Callable[[], datetime]
# A policy as path glob -> capabilities, e.g. {"secret/data/streamkap/*": ["create", "read"]}.
Policy = Mapping[str, Collection[str]]
SecretKey = tuple[str, str, str]  # (namespace, mount, path)


class CasMismatch(Exception):
    """A write's `options.cas` was not the secret's current version."""


class LoginRefused(Exception):
    """A login Vault refuses: 400 for a malformed one or unknown role, 403 for a wrong secret."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(status, message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Grant:
    """What a login role hands out: a token limited to `policy` (None: anything), named
    `policies`, living `ttl` seconds and renewable for as long again."""

    policy: Policy | None = None
    policies: tuple[str, ...] = ("default",)
    ttl: int = 3600


@dataclass(frozen=True)
class _LoginRole:
    name: str
    secrets: frozenset[str]  # the JWTs (kubernetes) or secret ids (approle) it accepts
    grant: Grant


@dataclass
class TokenInfo:
    """A token Vault knows: its policy, lease (`expires_at` None: never expires) and origin."""

    policy: Policy | None
    policies: tuple[str, ...]
    issued_at: datetime
    expires_at: datetime | None
    ttl: int
    path: str
    accessor: str
    display_name: str
    metadata: dict[str, str] | None = None

    @property
    def renewable(self) -> bool:
        return self.expires_at is not None

    def remaining(self, now: datetime) -> int:
        """Seconds left of the lease (0 for a token that never expires, as Vault reports it)."""
        if self.expires_at is None:
            return 0
        return max(0, int((self.expires_at - now).total_seconds()))


@dataclass(frozen=True)
class Login:
    """A successful login: the new token and what Vault reports of it."""

    client_token: str
    info: TokenInfo


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
    custom_metadata: dict[str, str] = field(default_factory=dict)  # the key's, not a version's

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


def _expired(info: TokenInfo, now: datetime) -> bool:
    return info.expires_at is not None and info.expires_at <= now


def _field(body: Mapping[str, Any], name: str) -> str:
    """A required string field of a login body; `LoginRefused` 400 "missing NAME" otherwise."""
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise LoginRefused(400, f"missing {name}")
    return value


def _wrong_proof(method: AuthMethod) -> str:
    return "permission denied" if method == "kubernetes" else "invalid role or secret ID"


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
        auth_mounts: Mapping[str, AuthMethod] = DEFAULT_AUTH_MOUNTS,
    ) -> None:
        super().__init__(now, faults)
        self.mounts = None if mounts is None else frozenset(m.strip("/") for m in mounts)
        self.cas_mismatch_status = cas_mismatch_status
        #: Auth mount path -> method; a login elsewhere is an unknown route.
        self.auth_mounts: dict[str, AuthMethod] = {m.strip("/"): k for m, k in auth_mounts.items()}
        self._tokens: dict[str, TokenInfo] = {}
        self._roles: dict[tuple[str, str], _LoginRole] = {}  # (auth mount, role or role_id)
        self._add(root_token, None, ("root",), None, "auth/token/root", "root")
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

    def add_token(
        self, token: str, policy: Policy | None = None, *, ttl: int | None = None
    ) -> None:
        """Accept `token`, limited to `policy` (path glob -> capabilities; None: root), for
        `ttl` seconds (None: forever)."""
        policies = ("default",) if policy else ("root",)
        self._add(token, policy, policies, ttl, "auth/token/create", "token")

    def revoke_token(self, token: str) -> None:
        with self._lock:
            self._tokens.pop(token, None)

    def known_token(self, token: str) -> bool:
        """Whether Vault accepts `token` now (expired ones are forgotten, as Vault revokes them)."""
        return self.token_info(token) is not None

    def token_info(self, token: str) -> TokenInfo | None:
        """What Vault knows of a live token; None if unknown or expired."""
        now = self.now()
        with self._lock:
            known = next((t for t in self._tokens if _same(token, t)), None)
            info = None if known is None else self._tokens[known]
            if known is not None and info is not None and _expired(info, now):
                del self._tokens[known]
                info = None
        return info

    def renew(self, token: str) -> TokenInfo | None:
        """Extend a live token's lease by its ttl from now; None if unknown or expired."""
        info = self.token_info(token)
        if info is None or info.expires_at is None:
            return info
        with self._lock:
            info.expires_at = self.now() + timedelta(seconds=info.ttl)
        return info

    def allowed(self, token: str, path: str, capabilities: Collection[str]) -> bool:
        """Whether a known token has one of `capabilities` on the API path (no `/v1/`)."""
        info = self.token_info(token)
        if info is None:
            return False
        if info.policy is None:
            return True
        return any(
            not set(capabilities).isdisjoint(granted) and _policy_pattern(glob).fullmatch(path)
            for glob, granted in info.policy.items()
        )

    def _add(
        self,
        token: str,
        policy: Policy | None,
        policies: tuple[str, ...],
        ttl: int | None,
        path: str,
        display_name: str,
        metadata: dict[str, str] | None = None,
    ) -> TokenInfo:
        now = self.now()
        expires = None if ttl is None else now + timedelta(seconds=ttl)
        accessor = secrets.token_urlsafe(18)
        copied = None if policy is None else dict(policy)
        info = TokenInfo(
            copied, policies, now, expires, ttl or 0, path, accessor, display_name, metadata
        )
        with self._lock:
            self._tokens[token] = info
        return info

    # Logins ------------------------------------------------------------------------------------

    def add_kubernetes_role(
        self,
        role: str,
        jwt: str | Iterable[str],
        grant: Grant | None = None,
        *,
        mount: str = "kubernetes",
    ) -> None:
        """Let `role` log in at the kubernetes mount with this service-account JWT (or any of
        these), receiving a token as `grant` says (default: full access for an hour)."""
        self._add_role(mount, "kubernetes", role, role, jwt, grant)

    def add_approle(
        self,
        role_id: str,
        secret_id: str | Iterable[str],
        grant: Grant | None = None,
        *,
        mount: str = "approle",
        name: str | None = None,
    ) -> None:
        """Let `role_id` log in at the approle mount with this secret id (or any of these)."""
        self._add_role(mount, "approle", role_id, name or role_id, secret_id, grant)

    def _add_role(
        self,
        mount: str,
        method: AuthMethod,
        key: str,
        name: str,
        accepted: str | Iterable[str],
        grant: Grant | None,
    ) -> None:
        mount = mount.strip("/")
        values = frozenset([accepted] if isinstance(accepted, str) else accepted)
        with self._lock:
            self.auth_mounts.setdefault(mount, method)
            self._roles[(mount, key)] = _LoginRole(name, values, grant or Grant())

    def login(self, mount: str, body: Mapping[str, Any]) -> Login:
        """Log in at an auth mount as Vault does; `LoginRefused` when Vault would refuse."""
        mount = mount.strip("/")
        method = self.auth_mounts.get(mount)
        if method is None:
            route = f"auth/{mount}/login"
            raise LoginRefused(
                404, f"no handler for route {json.dumps(route)}. route entry not found."
            )
        if method == "kubernetes":
            key, proof = _field(body, "role"), _field(body, "jwt")
            unknown = f"invalid role name {json.dumps(key)}"  # Go's %q
        else:  # approle
            key, proof = _field(body, "role_id"), _field(body, "secret_id")
            unknown = "invalid role or secret ID"
        with self._lock:
            role = self._roles.get((mount, key))
        if role is None:
            raise LoginRefused(400, unknown)
        if not any(_same(proof, accepted) for accepted in role.secrets):
            # Kubernetes: the TokenReview failed; AppRole says the same as for an unknown role.
            raise LoginRefused(403 if method == "kubernetes" else 400, _wrong_proof(method))
        grant = role.grant
        token = f"hvs.{secrets.token_urlsafe(24)}"
        meta_key = "role" if method == "kubernetes" else "role_name"
        path = f"auth/{mount}/login"
        display = f"{mount}-{role.name}"
        metadata = {meta_key: role.name}
        info = self._add(token, grant.policy, grant.policies, grant.ttl, path, display, metadata)
        return Login(token, info)

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
            custom = dict(secret.custom_metadata)
            return Secret(secret.created_time, secret.updated_time, versions, custom)

    def custom_metadata(self, key: SecretKey) -> dict[str, str]:
        """The key's custom metadata ({} for a key that has none, or does not exist)."""
        with self._lock:
            secret = self._secrets.get(key)
            return dict(secret.custom_metadata) if secret else {}

    def set_custom_metadata(self, key: SecretKey, custom: Mapping[str, str]) -> None:
        """Replace the key's custom metadata, as `POST <mount>/metadata/<path>` does; a key
        that does not exist yet is made, without versions."""
        now = self.now()
        with self._lock:
            secret = self._secrets.get(key)
            if secret is None:
                secret = self._secrets[key] = Secret(now, now)
            secret.custom_metadata = dict(custom)
            secret.updated_time = now

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
                    s.created_time,
                    s.updated_time,
                    {n: _copy(v) for n, v in s.versions.items()},
                    dict(s.custom_metadata),
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
