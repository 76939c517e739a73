"""Plain data passed between stages: what is desired, observed, planned, created and done.

Every stage imports its inputs and outputs from here, never from the stage that makes them.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import SecretStr

from provisioner.errors import SinkError

# `\Z`, not `$`: `$` also matches before a trailing newline, and such a marker is not at the end.
_MARKER = re.compile(r"(?:^|(?<= ))\[provisioner:([^\[\]]+)\]\Z")

#: The owner of manifests that name none; its marker has no owner part, as before owners existed.
DEFAULT_OWNER = "default"


def owned_key(owner: str, key: str) -> str:
    """What a marker holds: the key, prefixed by the owner unless it is the default one."""
    return key if owner == DEFAULT_OWNER else f"{owner}:{key}"


def marker(key: str, owner: str = DEFAULT_OWNER) -> str:
    """The ownership marker that ends the description of every credential we manage."""
    return f"[provisioner:{owned_key(owner, key)}]"


#: The longest description the API is taken to keep, marker included: longer ones lose their end,
#: and with it the marker. Streamkap does not document a cap, nor does the simulator enforce
#: one; this is the bound the manifest format has always had (docs/limits.md).
MAX_DESCRIPTION = 1024


def marked_description(description: str | None, key: str, owner: str = DEFAULT_OWNER) -> str:
    """The description to send on create: the manifest's text, then the marker."""
    mark = marker(key, owner)
    return f"{description} {mark}" if description else mark


def owner_key(description: str | None) -> str | None:
    """The owner-qualified key a remote description marks as ours (see `owned_key`), or None."""
    if not description:
        return None
    found = _MARKER.search(description)
    return found.group(1) if found else None


def split_owner(qualified: str) -> tuple[str, str]:
    """(owner, key) of an owner-qualified key; owner and key names never hold a colon."""
    owner, colon, key = qualified.partition(":")
    return (owner, key) if colon else (DEFAULT_OWNER, qualified)


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a value came from: a file, the YAML document in it, and the field path."""

    file: str
    doc: int
    path: tuple[str | int, ...]

    def child(self, *parts: str | int) -> Origin:
        return Origin(self.file, self.doc, self.path + parts)

    @property
    def dotted(self) -> str:
        out = ""
        for part in self.path:
            out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
        return out


class CredentialKind(StrEnum):
    """Which API a credential lives on: the manifest's `kind:`."""

    CLIENT_CREDENTIAL = "client-credential"  # /auth/client-credentials: API access only
    PROJECT_KEY = "project-key"  # /project-keys: API access, Kafka access, MCP scoping


class State(StrEnum):
    """Where a remote credential is in its life; client credentials are always ACTIVE.

    Project keys are made and deleted asynchronously: `creating` until Kafka access is set up,
    `deleting` until gone, or `delete_failed` (an earlier delete that must be retried).
    """

    ACTIVE = "active"
    CREATING = "creating"
    DELETING = "deleting"
    DELETE_FAILED = "delete_failed"


@dataclass(frozen=True, slots=True, order=True)
class AclEntry:
    """One Kafka ACL as the API holds it: one operation on one topic or consumer group."""

    resource: str  # TOPIC or GROUP
    name: str  # the topic or group name (or its prefix)
    pattern: str  # LITERAL or PREFIXED
    operation: str  # READ, WRITE, DESCRIBE, ... (valid for the resource)


@dataclass(frozen=True, slots=True)
class KafkaAccess:
    """A project key's Kafka access: as a manifest asks for it, or as the API shows it.

    `username` is the readable part a manifest asks for (None: derived from the key), or the
    whole Kafka username the API shows. `allow_ips` are normalised networks (`10.0.0.0/8`).
    """

    acls: frozenset[AclEntry] = frozenset()
    allow_ips: frozenset[str] = frozenset()  # empty: any address
    schema_registry: bool = False
    username: str | None = None


@dataclass(frozen=True, slots=True)
class McpScope:
    """Which tools of Streamkap's MCP server a project key's API access may call."""

    profile: str | None = None  # full, read-only, agent-operator, infra-admin
    allow: frozenset[str] = frozenset()  # overrides the profile
    block: frozenset[str] = frozenset()  # removed from it


@dataclass(frozen=True, slots=True)
class DesiredCredential:
    """One credential a manifest asks for, with defaults applied."""

    service: str
    name: str
    description: str | None
    service_id: str | None
    roles: tuple[str, ...]  # as written: role keys, names or ids
    permission_ids: tuple[str, ...]
    sinks: tuple[str, ...]
    rotate_after: timedelta | None
    grace: timedelta
    origin: Origin
    roles_origin: Origin
    role_ids: tuple[str, ...] = ()  # filled in once roles are resolved
    role_names: tuple[str, ...] = ()  # the resolved roles' names, as the API lists them
    owner: str = DEFAULT_OWNER
    kind: CredentialKind = CredentialKind.CLIENT_CREDENTIAL
    kafka: KafkaAccess | None = None  # project keys only
    mcp: McpScope | None = None  # project keys only
    # After a replacement, the old credential is kept past `grace` while it is still used, at
    # most this long (None: it goes at `grace`, used or not).
    grace_max: timedelta | None = None

    @property
    def key(self) -> str:
        return f"{self.service}/{self.name}"

    @property
    def wants_api(self) -> bool:
        """Whether it has API access (a client credential always has)."""
        return bool(self.roles or self.permission_ids or self.role_ids)

    @property
    def owned_key(self) -> str:
        """The key as this credential's marker holds it: what `RemoteCredential.key` matches."""
        return owned_key(self.owner, self.key)

    @property
    def remote_description(self) -> str:
        return marked_description(self.description, self.key, self.owner)


@dataclass(frozen=True, slots=True)
class RemoteCredential:
    """A credential as the API lists it (never with its secret).

    `client_id` is its identity on its API: a client credential's client id, or a project
    key's id (then `api_client_id` is the client id of its API access, if it has one).
    """

    client_id: str
    description: str | None
    role_ids: frozenset[str]
    service_id: str | None
    created_at: datetime | None
    permission_ids: frozenset[str] | None = None  # None: the API did not say
    kind: CredentialKind = CredentialKind.CLIENT_CREDENTIAL
    state: State = State.ACTIVE
    last_used_at: datetime | None = None  # None: never used, or the API does not say
    # Project keys only:
    name: str | None = None
    api_client_id: str | None = None  # None: no API access
    kafka: KafkaAccess | None = None  # None: no Kafka access; `username` the whole one
    mcp: McpScope | None = None

    @property
    def key(self) -> str | None:
        """The owner-qualified key its marker holds (`team:svc/cred`; `svc/cred` for "default")."""
        return owner_key(self.description)


@dataclass(frozen=True, slots=True)
class KafkaLogin:
    """A Kafka user's SASL login and where to reach the cluster, as the API shows it once."""

    username: str
    password: SecretStr = field(repr=False)
    bootstrap_servers: str = ""
    security_protocol: str | None = None  # SASL_SSL
    sasl_mechanism: str | None = None  # PLAIN
    schema_registry_url: str | None = None

    def properties(self) -> str:
        """A Java / librdkafka client's configuration lines (the password unwrapped)."""
        mechanism = self.sasl_mechanism or "PLAIN"
        module = (
            "org.apache.kafka.common.security.scram.ScramLoginModule"
            if mechanism.upper().startswith("SCRAM")
            else "org.apache.kafka.common.security.plain.PlainLoginModule"
        )
        username, password = _jaas(self.username), _jaas(self.password.get_secret_value())
        return "\n".join(
            [
                f"bootstrap.servers={self.bootstrap_servers}",
                f"security.protocol={self.security_protocol or 'SASL_SSL'}",
                f"sasl.mechanism={mechanism}",
                f'sasl.jaas.config={module} required username="{username}" password="{password}";',
            ]
        )


def _jaas(value: str) -> str:
    """A value quoted for a JAAS option: backslashes and quotes escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"')


@dataclass(frozen=True, slots=True)
class CreatedCredential:
    """A credential just created (or an access just added to a project key): the only moment
    its secrets are known. `secret` is the API access's (None: none was made), `kafka` the
    Kafka user's; a project key's API client id is `remote.api_client_id`."""

    remote: RemoteCredential
    secret: SecretStr | None = field(repr=False)
    kafka: KafkaLogin | None = None

    @property
    def api_client_id(self) -> str | None:
        if self.remote.kind is CredentialKind.PROJECT_KEY:
            return self.remote.api_client_id
        return self.remote.client_id


@dataclass(frozen=True, slots=True)
class SinkRecord:
    """What a sink stores for one credential; the layout of the file and Vault sinks.

    `client_id` and `secret` are the API access (None for a Kafka-only project key); a project
    key's record also holds its id and, with Kafka access, the Kafka login. `identity` is what
    reconciliation compares with the remote credential: the project key's id, else the client id.
    """

    service: str
    credential: str
    client_id: str | None
    secret: SecretStr | None = field(repr=False)
    description: str | None = None
    role_ids: tuple[str, ...] = ()
    permission_ids: tuple[str, ...] = ()
    service_id: str | None = None
    created_at: str | None = None
    project_key_id: str | None = None
    kafka: KafkaLogin | None = field(default=None, repr=False)

    @property
    def key(self) -> str:
        return f"{self.service}/{self.credential}"

    @property
    def identity(self) -> str:
        """The remote credential this record is of (see `RemoteCredential.client_id`)."""
        return self.project_key_id or self.client_id or ""

    def to_document(self) -> dict[str, object]:
        """The stored JSON object, secrets unwrapped: call only inside a sink's write.

        A client credential's layout is the contract's; a project key's adds its id and Kafka
        login, and leaves out `client_id`/`secret` when it has no API access.
        """
        document: dict[str, object] = {
            "client_id": self.client_id,
            "secret": _reveal(self.secret),
            "service": self.service,
            "credential": self.credential,
            "description": self.description,
            "role_ids": list(self.role_ids),
            "permission_ids": list(self.permission_ids),
            "service_id": self.service_id,
            "created_at": self.created_at,
        }
        if self.project_key_id is None:
            return document
        if self.client_id is None:
            del document["client_id"], document["secret"]
        document["project_key_id"] = self.project_key_id
        if self.kafka is not None:
            document.update(kafka_document(self.kafka))
        return document

    @classmethod
    def from_document(cls, document: object) -> SinkRecord | None:
        """A stored JSON object read back; None unless it holds a whole credential: a client
        id and its secret, or a project key's id and the secrets of each access it records."""
        if not isinstance(document, dict):
            return None
        service, credential = document.get("service"), document.get("credential")
        client_id, secret = _text(document.get("client_id")), _text(document.get("secret"))
        project_key_id = _text(document.get("project_key_id")) or None
        kafka = _kafka_login(document)
        has_api = bool(client_id and secret)
        if not all(isinstance(v, str) and v for v in (service, credential)):
            return None
        if project_key_id is None and not has_api:
            return None
        if project_key_id is not None and not (has_api or kafka):
            return None
        if (client_id or secret) and not has_api:  # half an API access: a damaged record
            return None
        return cls(
            service=str(service),
            credential=str(credential),
            client_id=client_id if has_api else None,
            secret=SecretStr(str(secret)) if has_api else None,
            description=_text(document.get("description")),
            role_ids=_texts(document.get("role_ids")),
            permission_ids=_texts(document.get("permission_ids")),
            service_id=_text(document.get("service_id")),
            created_at=_text(document.get("created_at")),
            project_key_id=project_key_id,
            kafka=kafka,
        )


#: The fields a project key's record adds when it has Kafka access, in their stored order.
KAFKA_FIELDS = (
    "kafka_username",
    "kafka_password",
    "kafka_bootstrap_servers",
    "kafka_security_protocol",
    "kafka_sasl_mechanism",
    "schema_registry_url",
    "kafka_properties",
)


def kafka_document(kafka: KafkaLogin) -> dict[str, object]:
    """A Kafka login's stored fields (`KAFKA_FIELDS`), password unwrapped."""
    return {
        "kafka_username": kafka.username,
        "kafka_password": kafka.password.get_secret_value(),
        "kafka_bootstrap_servers": kafka.bootstrap_servers,
        "kafka_security_protocol": kafka.security_protocol,
        "kafka_sasl_mechanism": kafka.sasl_mechanism,
        "schema_registry_url": kafka.schema_registry_url,
        "kafka_properties": kafka.properties(),
    }


def _kafka_login(document: dict[str, object]) -> KafkaLogin | None:
    """The Kafka login a stored object holds; None unless username and password are there."""
    username, password = document.get("kafka_username"), document.get("kafka_password")
    if not (isinstance(username, str) and username and isinstance(password, str) and password):
        return None
    return KafkaLogin(
        username=username,
        password=SecretStr(password),
        bootstrap_servers=_text(document.get("kafka_bootstrap_servers")) or "",
        security_protocol=_text(document.get("kafka_security_protocol")),
        sasl_mechanism=_text(document.get("kafka_sasl_mechanism")),
        schema_registry_url=_text(document.get("schema_registry_url")),
    )


def _reveal(secret: SecretStr | None) -> str | None:
    return None if secret is None else secret.get_secret_value()


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _texts(value: object) -> tuple[str, ...]:
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()


@dataclass(frozen=True, slots=True)
class Role:
    """A role as `GET /auth/roles` lists it."""

    id: str
    key: str
    name: str


class Kind(StrEnum):
    CREATE = "create"
    UPDATE = "update"  # roles changed in place (PATCH): client_id and secret kept
    REPLACE = "replace"
    RESTORE = "restore"  # copy the live credential's record from one sink to those that lack it
    DELETE = "delete"
    NOOP = "noop"
    # Not planned: a sink it names could not be read or written this run. Nothing is done.
    BLOCKED = "blocked"


class Reason(StrEnum):
    MISSING = "missing"
    LOST_SECRET = "lost-secret"
    DRIFT_ROLES = "drift:roles"
    DRIFT_PERMISSIONS = "drift:permissions"
    DRIFT_SERVICE_ID = "drift:service_id"
    # Project keys: changed in place (PATCH), their secrets kept.
    DRIFT_NAME = "drift:name"
    DRIFT_DESCRIPTION = "drift:description"
    DRIFT_KAFKA = "drift:kafka"  # ACLs or the allow list
    DRIFT_MCP = "drift:mcp"
    ACCESS_ADDED = "access-added"  # Kafka or API access added (PATCH; its new secrets delivered)
    # Project keys: an access removed, or what no PATCH changes (Kafka user, Schema Registry).
    DRIFT_ACCESS = "drift:access"
    DRIFT_KIND = "drift:kind"  # the manifest's `kind:` changed: the other kind's credential goes
    ROTATION = "rotation"
    FORCED = "forced"  # --replace KEY: replaced now, whatever its state
    # A rotation due or a superseded credential past its grace, left to a later run by the
    # change budget (a sink that lost its record is still restored).
    DEFERRED = "deferred"
    DUPLICATE = "duplicate"  # newer than the credential the sinks hold: its secret is lost
    SUPERSEDED = "superseded"  # older than the credential the sinks hold, past grace
    ORPHAN = "orphan"  # marked, in no manifest: a delete with --prune, a noop without
    IN_GRACE = "in-grace"  # superseded, left live until the kept one is older than grace
    # Superseded and past grace, but used since its successor was delivered: kept (grace_max).
    IN_USE = "in-use"
    DELETE_FAILED = "delete-failed"  # an earlier delete ended `delete_failed`: tried again
    UP_TO_DATE = "up-to-date"
    # A project key the sinks hold that Streamkap is still setting up (`creating`): not
    # converged yet, nothing to do but look again next run.
    ACTIVATING = "activating"
    SINK_ERROR = "sink-error"  # blocked: the detail says which sink and why


@dataclass(frozen=True, slots=True)
class Action:
    """One step of a plan, about one key. `client_id` is the existing credential it concerns."""

    kind: Kind
    key: str
    reason: Reason
    desired: DesiredCredential | None = None
    client_id: str | None = None
    # Replace: old credentials to delete once the new one is delivered (empty under grace).
    retire: tuple[str, ...] = ()
    # Every marked credential of this key seen when planning: never a create's lost leftover.
    known: tuple[str, ...] = ()
    detail: str = ""  # why, in words: shown to people next to the reason
    created_at: datetime | None = None  # of the credential it concerns: the oldest rotate first
    # Replace, delete: it ends only credentials no sink holds, made moments ago (what a killed
    # run created and never delivered): not counted by the change budget (see plan.LEFTOVER_AGE).
    leftover: bool = False
    # Restore: the readable sink whose record is copied, and the sinks it is copied to.
    # Update: (no source) the readable sinks whose records it refreshes.
    source: str | None = None
    targets: tuple[str, ...] = ()
    # Create, replace, update, restore: when the credential it leaves will be due for rotation.
    rotates_at: datetime | None = None
    # Create: another owner whose marked credential has this key (a wrong `owner:`, maybe).
    taken_by: str | None = None
    # The API the credential it concerns lives on (a delete has no `desired` to say).
    credential_kind: CredentialKind = CredentialKind.CLIENT_CREDENTIAL

    @property
    def writes(self) -> bool:
        return self.kind not in (Kind.NOOP, Kind.BLOCKED)


@dataclass(frozen=True, slots=True)
class Plan:
    """Actions in order: each desired key's actions in manifest order, then orphans."""

    actions: tuple[Action, ...]
    # Marked credentials of other owners: (owner, how many), never touched, shown once.
    other_owners: tuple[tuple[str, int], ...] = ()

    @property
    def counts(self) -> Mapping[Kind, int]:
        return Counter(action.kind for action in self.actions)

    def count(self, kind: Kind, reason: Reason | None = None) -> int:
        return sum(1 for a in self.actions if a.kind is kind and reason in (None, a.reason))

    @property
    def has_changes(self) -> bool:
        return any(action.writes for action in self.actions)


# What readable sinks hold: key -> sink name -> client_id (None when a sink holds nothing).
# A sink absent from a key's mapping is write-only: it counts as holding whatever is live.
Holdings = Mapping[str, Mapping[str, str | None]]


class Status(StrEnum):
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"  # not started: the run was asked to stop
    # Not done: an update the API could only make as a replace, beyond the change budget.
    DEFERRED = "deferred"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one action; `client_id` is the new credential for create/replace."""

    action: Action
    status: Status
    client_id: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class Observed:
    """What a run saw before planning; `blocked` holds the keys that cannot be planned: a sink
    they name failed its check (token refused, directory unwritable) or could not be read."""

    roles: Sequence[Role]
    remote: Sequence[RemoteCredential]
    holdings: Holdings
    blocked: Mapping[str, SinkError]


@dataclass(frozen=True)
class Planned:
    """A plan, and the credentials that cannot be reconciled this run (a sink failed its check
    or could not be read); the plan holds one `blocked` action for each of them."""

    plan: Plan
    blocked: Mapping[str, SinkError]
    # Set when the plan exceeds the change budget: what, and how to proceed. Apply stops.
    refusal: str | None = None
    # Restores: the proven record of each key, secret included (its repr never shows it).
    records: Mapping[str, SinkRecord] = field(default_factory=dict, repr=False)
    # Counted changes the budget still allows once the plan's are done (None: no limit): an
    # update that the API can only make as a replace spends one, or is deferred.
    room: int | None = None


@dataclass(frozen=True)
class RunResult:
    """One apply: its plan and what became of each action."""

    run_id: str
    started_at: datetime
    finished_at: datetime
    plan: Plan
    outcomes: tuple[Outcome, ...]

    @property
    def failed(self) -> bool:
        """Some action failed or was not started, or some credential could not be planned."""
        blocked = any(action.kind is Kind.BLOCKED for action in self.plan.actions)
        # A deferred change is left for a later run on purpose, like a deferred rotation.
        done = (Status.OK, Status.DEFERRED)
        return blocked or any(outcome.status not in done for outcome in self.outcomes)


class Allowance:
    """What the budget leaves for changes the plan did not foresee (an update that the API can
    only make as a replace). Used by one run's tasks on one event loop: no lock needed."""

    def __init__(self, room: int | None) -> None:
        self.room = room

    def take(self) -> bool:
        """Spend one counted change; False when none is left (then the change is deferred)."""
        if self.room is None:
            return True
        if self.room <= 0:
            return False
        self.room -= 1
        return True
