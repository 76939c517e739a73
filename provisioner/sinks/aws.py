"""The `aws-secretsmanager` sink: one AWS Secrets Manager secret per credential.

The secret is named `<prefix><service>/<credential>`; its `SecretString` is the JSON record (or the
mapped `fields`), and it is tagged `managed-by=streamkap-provisioner`,
`streamkap-provisioner-key=<service>/<credential>` and `streamkap-provisioner-owner=<owner>`. A
secret without the managed-by tag, or of another owner (no owner tag: the default owner), is
never written to or deleted.

The AWS SDK (aiobotocore, `pip install 'streamkap-provisioner[aws]'`) is imported only when a
sink of this type is opened, and finds credentials, region and endpoint exactly as the AWS CLI
does (environment, shared config and profiles, web identity, instance roles, `AWS_ENDPOINT_URL`
and `AWS_ENDPOINT_URL_SECRETS_MANAGER`). The SDK's own retries are off: throttling, 5xx and
connection failures are retried with the provisioner's policy (provisioner.http.retry). Every
request has the HTTP stack's whole-answer deadline and answer cap (`_aws_http.CappedSession`).

Undo moves `AWSCURRENT` back to the version a write replaced (or deletes, without a recovery
window, a secret the write created); prune deletes with the default recovery window.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import re
import uuid
from contextlib import AsyncExitStack
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar

import anyio
import structlog
from pydantic import field_validator, model_validator

from provisioner.errors import SinkError, UsageError
from provisioner.http.retry import Sleep
from provisioner.http.transport import AnswerTooLarge
from provisioner.logs import cut
from provisioner.model import DEFAULT_OWNER, SinkRecord
from provisioner.sinks._scaffold import RemoteSink, Unreachable
from provisioner.sinks._unsettled import Unsettled
from provisioner.sinks.base import NOTHING, Previous, SinkContext, SinkOptions
from provisioner.sinks.fields import MappedSinkOptions

__all__ = ["INSTALL", "MANAGED_BY", "SecretsManagerOptions", "SecretsManagerSink"]

log = structlog.get_logger("provisioner.sinks.aws")

INSTALL = "pip install 'streamkap-provisioner[aws]'"
MANAGED_BY = ("managed-by", "streamkap-provisioner")
KEY_TAG = "streamkap-provisioner-key"
OWNER_TAG = "streamkap-provisioner-owner"
#: What `check` describes: never a credential's secret (those hold `<service>/<credential>`).
CHECK_NAME = "provisioner-write-check"
CURRENT = "AWSCURRENT"
# Secrets Manager's name characters; `/` separates our folders.
_PREFIX = re.compile(r"[A-Za-z0-9/_+=.@-]*")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d+")
_THROTTLED = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "LimitExceededException",
        "InternalServiceError",
        "InternalFailure",
        "ServiceUnavailable",
    }
)


def sdk_installed() -> bool:
    """Whether the AWS SDK (the `aws` extra) can be imported."""
    try:
        return importlib.util.find_spec("aiobotocore") is not None
    except (ImportError, ValueError):  # a module set to None in sys.modules: blocked
        return False


class SecretsManagerOptions(MappedSinkOptions):
    """Options of the `aws-secretsmanager` sink: the name prefix, and the region (else the AWS
    chain's: AWS_REGION, AWS_DEFAULT_REGION, the profile's)."""

    prefix: str = ""
    region: str | None = None

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not _PREFIX.fullmatch(value) or value.startswith("/") or "//" in value:
            raise ValueError(
                f"{value!r} is not a Secrets Manager name prefix "
                "(letters, digits, '/_+=.@-', not starting with '/')"
            )
        if len(value) > 256:
            raise ValueError("the prefix is longer than 256 characters")
        return value

    @field_validator("region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        if value is not None and not _REGION.fullmatch(value):
            raise ValueError(f"{value!r} is not an AWS region (such as eu-west-1)")
        return value

    @model_validator(mode="after")
    def _sdk(self) -> SecretsManagerOptions:
        if not sdk_installed():
            raise ValueError(f"the aws-secretsmanager sink needs the AWS SDK: {INSTALL}")
        return self


@dataclass(frozen=True, slots=True)
class _Created:
    """A write created the secret: its undo deletes it (no recovery window)."""


@dataclass(frozen=True, slots=True)
class _Replaced:
    """A write put a new version on top of `version`: its undo makes `version` current again."""

    version: str


@dataclass(frozen=True, slots=True)
class _State:
    """What a secret is now: absent (None), or its tags, current version and deletion mark."""

    managed: bool
    key: str | None
    owner: str | None  # None: written before owners were recorded (the default owner's)
    current: str | None
    deleted: bool


class SecretsManagerSink(RemoteSink):
    """Secrets in AWS Secrets Manager, through the AWS SDK's own credential chain."""

    options_model: ClassVar[type[SinkOptions]] = SecretsManagerOptions
    kind = "aws-secretsmanager"

    @classmethod
    def options_from_uri(cls, target: str) -> dict[str, Any]:
        """`aws-sm:PREFIX` gives the name prefix (the region comes from the AWS chain)."""
        return {"prefix": target}

    def __init__(
        self,
        name: str,
        options: SecretsManagerOptions,
        context: SinkContext,
        *,
        sleep: Sleep = anyio.sleep,
    ) -> None:
        if not sdk_installed():
            raise UsageError(
                f"sink {name!r}: the aws-secretsmanager sink needs the AWS SDK: {INSTALL}"
            )
        # The SDK logs request bodies (our secrets) at DEBUG: keep it quiet whatever the level.
        for logger in ("botocore", "aiobotocore", "boto3"):
            logging.getLogger(logger).setLevel(logging.WARNING)
        super().__init__(name, context, sleep)
        self._prefix = options.prefix
        self._region = options.region
        self._fields = options.field_map()
        self._timeout = context.timeout
        self._connections = context.connections
        self._stack = AsyncExitStack()
        self._client: Any = None
        self._opening = anyio.Lock()
        self._unsettled = Unsettled()
        self._tokens: dict[str, str] = {}  # key -> the request token of a write that failed
        #: Calls made, by operation (for tests and metrics).
        self.calls: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"SecretsManagerSink({self.name!r}, prefix={self._prefix!r})"

    # --- the protocol --------------------------------------------------------------------------

    async def check(self) -> SinkError | None:
        """Whether AWS accepts the credentials and lets them read secrets under the prefix: one
        `DescribeSecret` of a name no credential uses (ResourceNotFound is the answer hoped for;
        AccessDenied, no credentials or an unreachable endpoint fail it)."""
        return await self._checked("check", self._probe)

    async def read(self, service: str, credential: str) -> str | None:
        """The identity (project key id, else client id) the current version holds; None when
        absent or scheduled for deletion.

        SinkError for a secret this run may not write: not managed by us, or another owner's."""
        secret_id = self._secret_name(service, credential)
        document = await self._retrying(
            "read", partial(self._owned_document, secret_id, f"{service}/{credential}")
        )
        return self._fields.identity(document)

    async def read_record(self, service: str, credential: str) -> SinkRecord | None:
        """The current version's record, secret included; None when absent."""
        secret_id = self._secret_name(service, credential)
        document = await self._retrying(
            "read", partial(self._owned_document, secret_id, f"{service}/{credential}")
        )
        return self._fields.from_document(document, service, credential)

    async def write(self, record: SinkRecord) -> Previous:
        """Create the secret, or put a new current version on it; return what it replaced."""
        secret_id = self._secret_name(record.service, record.credential)
        async with self._lock(secret_id):
            token = self._tokens.setdefault(record.key, str(uuid.uuid4()))
            seen: list[Previous] = []
            try:
                await self._write(secret_id, record, token, seen)
            except SinkError:
                self._unsettled.failed(record.key, seen[0] if seen else None)
                raise
            del self._tokens[record.key]
            return self._unsettled.settled(record.key, record.identity, seen[0])

    async def restore(
        self, service: str, credential: str, client_id: str, previous: Previous
    ) -> None:
        """While the current version holds `client_id`: make the replaced version current again,
        delete a secret the write created (no recovery window), or, for NOTHING, delete the
        secret with the default recovery window (a prune)."""
        secret_id = self._secret_name(service, credential)
        async with self._lock(secret_id):
            await self._retrying("restore", partial(self._restore, secret_id, client_id, previous))

    async def delete(self, service: str, credential: str, client_id: str) -> None:
        """Delete the secret, with the default recovery window, if it still holds `client_id`."""
        await self.restore(service, credential, client_id, NOTHING)

    async def aclose(self) -> None:
        """Close the SDK client and its connection pool."""
        await self._stack.aclose()
        self._client = None

    # --- steps ---------------------------------------------------------------------------------

    async def _write(
        self, secret_id: str, record: SinkRecord, token: str, seen: list[Previous]
    ) -> None:
        state = await self._describe(secret_id)
        if state is None:
            seen.append(Previous(None, _Created()))
            await self._call(
                "CreateSecret",
                secret_id,
                Name=secret_id,
                SecretString=self._secret_string(record),
                ClientRequestToken=token,
                Tags=[
                    {"Key": MANAGED_BY[0], "Value": MANAGED_BY[1]},
                    {"Key": KEY_TAG, "Value": record.key},
                    {"Key": OWNER_TAG, "Value": self.owner},
                ],
            )
            return
        self._check_managed(secret_id, state, record.key)
        if state.deleted:
            # Pruned earlier (still in its recovery window) and wanted again: bring it back.
            await self._call("RestoreSecret", secret_id, SecretId=secret_id)
        held = await self._current_document(secret_id) if state.current else None
        held_id = self._fields.identity(held)
        if state.current is None:
            seen.append(Previous(held_id, _Created()))
        else:
            seen.append(Previous(held_id, _Replaced(state.current)))
        await self._call(
            "PutSecretValue",
            secret_id,
            SecretId=secret_id,
            SecretString=self._secret_string(record),
            ClientRequestToken=token,
        )

    async def _restore(self, secret_id: str, client_id: str, previous: Previous) -> None:
        state = await self._describe(secret_id)
        if state is None or state.deleted or not state.managed:
            return
        if (state.owner or DEFAULT_OWNER) != self.owner:
            return  # another owner's: never restored over nor deleted
        if self._fields.identity(await self._current_document(secret_id)) != client_id:
            return  # someone else has written since: theirs stays
        content = previous.content
        if isinstance(content, _Replaced) and state.current is not None:
            await self._call(
                "UpdateSecretVersionStage",
                secret_id,
                SecretId=secret_id,
                VersionStage=CURRENT,
                MoveToVersionId=content.version,
                RemoveFromVersionId=state.current,
            )
        elif isinstance(content, _Created):
            await self._call(
                "DeleteSecret", secret_id, SecretId=secret_id, ForceDeleteWithoutRecovery=True
            )
        else:
            await self._call("DeleteSecret", secret_id, SecretId=secret_id)
            log.info("aws.secret_deleted", sink=self.name, secret=secret_id, recoverable=True)

    async def _describe(self, secret_id: str) -> _State | None:
        try:
            answer = await self._call("DescribeSecret", secret_id, SecretId=secret_id)
        except _NotFound:
            return None
        tags = {t.get("Key"): t.get("Value") for t in answer.get("Tags") or ()}
        stages = answer.get("VersionIdsToStages") or {}
        current = next((v for v, names in stages.items() if CURRENT in names), None)
        return _State(
            managed=tags.get(MANAGED_BY[0]) == MANAGED_BY[1],
            key=tags.get(KEY_TAG),
            owner=tags.get(OWNER_TAG),
            current=current,
            deleted=answer.get("DeletedDate") is not None,
        )

    async def _probe(self) -> None:
        try:
            await self._call(
                "DescribeSecret", self._prefix + CHECK_NAME, SecretId=self._prefix + CHECK_NAME
            )
        except _NotFound:
            return

    async def _owned_document(self, secret_id: str, key: str) -> object:
        """The current version's JSON object (see `_current_document`), once the tags show the
        secret is ours to write: SinkError for another program's or another owner's."""
        state = await self._describe(secret_id)
        if state is None or state.deleted or state.current is None:
            return None
        self._check_managed(secret_id, state, key)
        return await self._current_document(secret_id)

    async def _current_document(self, secret_id: str) -> object:
        """The current version's JSON object; None when absent, deleted or not JSON."""
        try:
            # The stage named explicitly: AWS's default, and moto's server otherwise keeps
            # answering with the version a write made current, after an undo has moved it back.
            answer = await self._call(
                "GetSecretValue", secret_id, SecretId=secret_id, VersionStage=CURRENT
            )
        except _NotFound:
            return None
        text = answer.get("SecretString")
        try:
            document = json.loads(text) if isinstance(text, str) else None
        except ValueError:
            return None
        self._fields.remember(document)  # now in memory: redact its secrets everywhere
        return document

    def _check_managed(self, secret_id: str, state: _State, key: str) -> None:
        if not state.managed:
            raise SinkError(
                self.name,
                f"secret {secret_id!r} exists but is not managed by streamkap-provisioner (no tag "
                f"{MANAGED_BY[0]}={MANAGED_BY[1]}): refusing to overwrite it; delete it or tag it",
            )
        if state.key not in (None, key):
            raise SinkError(
                self.name,
                f"secret {secret_id!r} is tagged {KEY_TAG}={state.key}, not {key}: "
                "refusing to overwrite it",
            )
        self.check_owner(state.owner, f"secret {secret_id!r}")

    def _secret_string(self, record: SinkRecord) -> str:
        return json.dumps(self._fields.to_document(record))

    # --- the SDK -------------------------------------------------------------------------------

    async def _call(self, operation: str, secret_id: str, **params: Any) -> dict[str, Any]:
        """One SDK call; its failures as SinkError (retryable when transient) or _NotFound."""
        from botocore import exceptions  # the SDK is there: the sink could not open otherwise

        client = await self._open()
        self.calls[operation] = self.calls.get(operation, 0) + 1
        method = getattr(client, _snake(operation))
        try:
            answer: dict[str, Any] = await method(**params)
        except AnswerTooLarge as exc:  # the same answer again would be as large: not retried
            raise SinkError(self.name, f"cannot {operation} {secret_id!r}: {exc}") from None
        except (exceptions.EndpointConnectionError, exceptions.ConnectTimeoutError) as exc:
            raise Unreachable(
                self.name, f"cannot {operation} {secret_id!r}: {type(exc).__name__}: {exc}"
            ) from None
        except exceptions.ReadTimeoutError:
            raise SinkError(
                self.name,
                f"cannot {operation} {secret_id!r}: no complete answer within "
                f"{self._timeout:g} s (PROVISIONER_TIMEOUT)",
                retryable=True,
            ) from None
        except exceptions.ClientError as exc:
            raise self._client_error(exc, operation, secret_id) from None
        except (exceptions.NoCredentialsError, exceptions.PartialCredentialsError) as exc:
            raise SinkError(
                self.name,
                f"no AWS credentials ({exc}): set them as the AWS CLI reads them "
                "(AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, web identity, "
                "an instance role)",
            ) from None
        except (exceptions.HTTPClientError, exceptions.ConnectionError) as exc:
            raise SinkError(
                self.name,
                f"cannot {operation} {secret_id!r}: {type(exc).__name__}: {exc}",
                retryable=True,
            ) from None
        except exceptions.BotoCoreError as exc:
            raise SinkError(self.name, f"cannot {operation} {secret_id!r}: {exc}") from None
        return answer

    def _client_error(self, exc: Any, operation: str, secret_id: str) -> Exception:
        error = exc.response.get("Error") or {}
        code = str(error.get("Code") or "")
        status = int((exc.response.get("ResponseMetadata") or {}).get("HTTPStatusCode") or 0)
        message = str(error.get("Message") or "")
        if code == "ResourceNotFoundException":
            return _NotFound()
        if code == "InvalidRequestException" and "delet" in message.lower():
            return _NotFound()  # scheduled for deletion: its value cannot be read
        text = f"cannot {operation} {secret_id!r}: {code or status}: {cut(message)}"
        if code in ("AccessDeniedException", "AccessDenied"):
            text += f" (the IAM policy needs secretsmanager:{operation} on this secret's ARN)"
        return SinkError.from_response(self.name, text, status, throttled=code in _THROTTLED)

    async def _open(self) -> Any:
        if self._client is not None:
            return self._client
        async with self._opening:
            if self._client is None:
                from aiobotocore.config import AioConfig
                from aiobotocore.session import get_session
                from botocore.exceptions import NoRegionError

                from provisioner.sinks._aws_http import CappedSession

                config = AioConfig(
                    http_session_cls=CappedSession,  # the deadline and cap of the HTTP stack
                    retries={"total_max_attempts": 1, "mode": "standard"},  # ours, not the SDK's
                    connect_timeout=self._timeout,
                    read_timeout=self._timeout,
                    max_pool_connections=self._connections,
                    user_agent_extra="streamkap-provisioner",
                )
                # AWS_REGION first, as the AWS CLI v2 reads it (botocore knows only
                # AWS_DEFAULT_REGION and the profile's region, which it resolves itself).
                region = self._region or os.environ.get("AWS_REGION") or None
                creator = get_session().create_client(
                    "secretsmanager", region_name=region, config=config
                )
                try:
                    self._client = await self._stack.enter_async_context(creator)
                except NoRegionError:
                    raise SinkError(
                        self.name,
                        "no AWS region: give the sink a `region`, or set AWS_REGION "
                        "(or a region in the AWS profile)",
                    ) from None
        return self._client

    def _secret_name(self, service: str, credential: str) -> str:
        for part in (service, credential):
            # Names are validated by the manifest; this guards the secret name against the rest.
            if part in ("", ".", "..") or not _PREFIX.fullmatch(part) or "/" in part:
                raise SinkError(self.name, f"invalid name {part!r} for a secret name")
        return f"{self._prefix}{service}/{credential}"


class _NotFound(Exception):
    """The secret does not exist (or is scheduled for deletion, for a read)."""


def _snake(operation: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower()
