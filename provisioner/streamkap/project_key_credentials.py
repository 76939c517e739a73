"""Project keys as a `CredentialApi`: what the engine and observe do with `/project-keys`.

Over the low-level adapter (`project_keys.ProjectKeys`) it adds what reconciliation needs: marked
keys read in detail (their ACLs and allow list), a Kafka username derived from the key and a
password from a CSPRNG for each new Kafka user, the wait for a new key to become `active`, and the
PATCH holding only what differs. Translations to and from the model are `project_key_mapping`'s.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

from provisioner.errors import (
    ApiError,
    PatchUnsupported,
    ProjectKeyBusy,
    ProvisionerError,
    UnusableAccess,
    UnusableAnswer,
    UnusableCreate,
    first_error,
)
from provisioner.kafka_usernames import derive, new_generation, new_password
from provisioner.logs import register_secret
from provisioner.model import (
    CreatedCredential,
    DesiredCredential,
    RemoteCredential,
    SinkRecord,
    State,
    owner_key,
)
from provisioner.runtime import for_each
from provisioner.streamkap import project_key_answers as answers
from provisioner.streamkap import project_key_mapping as mapping
from provisioner.streamkap.client_credentials import login_works
from provisioner.streamkap.project_key_answers import ProjectKeyDetail
from provisioner.streamkap.project_key_bodies import KafkaConfig
from provisioner.streamkap.project_keys import PROJECT_KEYS, ProjectKeys
from provisioner.streamkap.requests import Requests

#: The wait for a new key's activation: the first look again after this many seconds, each
#: next one twice as late, never more than CAP apart (a key is typically active in seconds).
FIRST_POLL = 0.5
POLL_CAP = 4.0

log = structlog.get_logger("provisioner.streamkap.project_key_credentials")


class ProjectKeyCredentials:
    """Project keys over one request path; implements `CredentialApi`.

    `activation_timeout`: how long a create waits for its key to become `active` (seconds,
    measured on the request path's clock) before it gives the key up as unusable.
    """

    def __init__(self, requests: Requests, keys: ProjectKeys, *, activation_timeout: float) -> None:
        self._requests = requests
        self._keys = keys
        self.activation_timeout = activation_timeout

    async def list(self) -> list[RemoteCredential]:
        """Every key, each once; marked ones read in detail (a key gone meanwhile is left out).

        An unmarked key is never read further: it is shown as listed (its Kafka username known,
        its ACLs not), since the provisioner never touches it."""
        summaries = await self._keys.list()
        marked = [key for key in summaries if owner_key(key.description) is not None]
        details: dict[str, ProjectKeyDetail | None] = {}

        async def read(key: answers.ProjectKeySummary) -> None:
            details[key.id] = await self._keys.detail(key.id)

        try:
            await for_each(marked, read, self._requests.config.concurrency)
        except BaseExceptionGroup as failed:  # one failure ends the listing: report it alone
            raise first_error(failed) from None
        remote = []
        for key in summaries:
            if key.id not in details:
                remote.append(mapping.remote_of(key))
            elif (detail := details[key.id]) is not None:
                remote.append(mapping.remote_of(detail))
        return remote

    async def create(self, desired: DesiredCredential) -> CreatedCredential:
        """Create once and wait for the key to be `active`; AmbiguousCreate when the outcome is
        unknown, KafkaUsernameTaken on a 409, UnusableCreate (with the key's id: the caller
        deletes it, this does not) when it lacks its secrets, differs from what was asked, or
        is not active within `activation_timeout`."""
        kafka = None
        if desired.kafka is not None:
            kafka = mapping.kafka_config(desired.kafka, self._new_user(desired))
        made = await self._keys.create(mapping.new_key(desired, kafka))
        detail = await self._active(desired.key, made.project_key_id)
        problems = mapping.differences(desired, detail)
        if made.api is not None and detail.api_client_id != made.api.client_id:
            problems.append("its API client id is not the one the create showed")
        if problems:
            problem = "the API made other than asked: " + "; ".join(problems)
            raise UnusableCreate(desired.key, made.project_key_id, problem)
        return CreatedCredential(
            remote=mapping.remote_of(detail),
            secret=None if made.api is None else made.api.client_secret,
            kafka=None if made.kafka is None else mapping.kafka_login(made.kafka),
        )

    async def update(self, key_id: str, desired: DesiredCredential) -> CreatedCredential | None:
        """Bring a key to `desired` with one PATCH of what differs (read fresh first).

        An access it adds comes back with its new secrets (and the key as the PATCH left it,
        waited on until active after Kafka was added); otherwise None. PatchUnsupported, and
        nothing sent, for what only a replace can do (removing an access, permissions, the
        Kafka username, Schema Registry); ProjectKeyBusy while the key is not active;
        UnusableAccess when a PATCH adding an access answers unusably (no new secrets, another
        key, other changes than asked): the caller deletes the key, whose new access no sink
        can hold.
        """
        path = f"{PROJECT_KEYS}/{key_id}"
        key = await self._keys.detail(key_id)
        if key is None:
            raise ApiError("GET", path, 404, "no such project key: it cannot be changed")
        if mapping.state_of(key.status) is not State.ACTIVE:
            raise ProjectKeyBusy(key_id, key.status)
        try:
            change = mapping.change_for(desired, key, lambda: self._new_user(desired))
        except mapping.Unpatchable as exc:
            raise PatchUnsupported("PATCH", path, 400, f"not sent: {exc}") from None
        if change is None:
            return None
        adds = change.adds_api or change.adds_kafka
        try:
            patched = await self._keys.patch(key_id, change)
            problems = mapping.differences(
                desired, patched.detail, roles=change.role_ids is not None
            )
            if problems:
                problem = "the API changed otherwise: " + "; ".join(problems)
                raise UnusableAnswer("PATCH", path, problem)
        except UnusableAnswer as exc:
            if adds:  # the access may exist now, its secrets unknown: the key must go
                raise UnusableAccess(desired.key, key_id, exc) from None
            raise
        except ProvisionerError as exc:
            # An answer lost (a timeout, a 5xx, a retry refused because the first attempt was
            # done): if the access is there now, its secrets were never seen.
            if adds and await self._access_appeared(key_id, key):
                lost = UnusableAnswer(
                    "PATCH", path, f"the access was added, its answer lost: {exc}"
                )
                raise UnusableAccess(desired.key, key_id, lost) from None
            raise
        new_api, new_kafka = patched.new_api_credentials, patched.new_kafka_credentials
        if not adds:
            return None
        detail = patched.detail
        if change.adds_kafka:  # the key is `creating` again while its Kafka user is made
            detail = await self._settled_after_patch(detail)
        return CreatedCredential(
            remote=mapping.remote_of(detail),
            secret=None if new_api is None else new_api.client_secret,
            kafka=None if new_kafka is None else mapping.kafka_login(new_kafka),
        )

    async def _access_appeared(self, key_id: str, before: ProjectKeyDetail) -> bool:
        """Whether the key has an access now that it did not have `before` (read afresh)."""
        now = await self._keys.detail(key_id)
        if now is None:
            return False
        added_api = before.api_client_id is None and now.api_client_id is not None
        return added_api or (before.kafka_username is None and now.kafka_username is not None)

    async def delete(self, key_id: str) -> None:
        """Ask for the deletion (the key goes `deleting`); one already gone counts as deleted."""
        await self._keys.delete(key_id)

    async def verify(self, record: SinkRecord) -> bool:
        """One login with the record's API access. A Kafka-only record cannot be proven (the
        API offers no check of a Kafka password): False, so it is never restored unproven."""
        if record.project_key_id is None or record.client_id is None or record.secret is None:
            return False
        return await login_works(self._requests, record.client_id, record.secret)

    # ---------------------------------------------------------------------------------------

    def _new_user(self, desired: DesiredCredential) -> KafkaConfig:
        """A fresh Kafka user for `desired`: a new generation of its username, a new password."""
        readable = desired.kafka.username if desired.kafka is not None else None
        username = derive(desired.owned_key, readable, new_generation())
        # Half of a login: kept out of every line, like the password (an API's 409 may echo it).
        register_secret(username)
        return KafkaConfig(username=username, password=new_password())

    async def _active(self, key: str, key_id: str) -> ProjectKeyDetail:
        """The new key once `active`; UnusableCreate when it is not (or cannot be read)."""
        try:
            detail = await self._settled(key_id)
        except ProvisionerError as exc:  # Stopped, the breaker, an error: it goes unused
            raise UnusableCreate(key, key_id, f"its status could not be read: {exc}") from None
        if detail is None:
            raise UnusableCreate(key, key_id, "it was gone before it became active")
        state = mapping.state_of(detail.status)
        if state is State.CREATING:
            waited = f"{self.activation_timeout:g}"
            raise UnusableCreate(key, key_id, f"still creating after {waited} s")
        if state is not State.ACTIVE:
            raise UnusableCreate(key, key_id, f"it is {detail.status} instead of active")
        return detail

    async def _settled_after_patch(self, detail: ProjectKeyDetail) -> ProjectKeyDetail:
        """The key once active after a PATCH added Kafka access, else as last seen: the new
        secrets are delivered whatever the wait gives (the key becomes active on its own);
        `remote.state` of what `update` returns says which."""
        try:
            settled = await self._settled(detail.id, detail)
        except ProvisionerError as exc:
            log.warning("project_key.activation_unknown", key_id=detail.id, error=str(exc))
            return detail
        return settled or detail

    async def _settled(
        self, key_id: str, detail: ProjectKeyDetail | None = None
    ) -> ProjectKeyDetail | None:
        """The key read again until it is no longer `creating` or `activation_timeout` is up;
        None once it is gone. Starts from `detail` when given, else reads it first."""
        clock: Callable[[], float] = self._requests.clock
        start, delay = clock(), FIRST_POLL
        if detail is None:
            detail = await self._keys.detail(key_id)
        while detail is not None and mapping.state_of(detail.status) is State.CREATING:
            left = self.activation_timeout - (clock() - start)
            if left <= 0:
                break
            await self._requests.sleep(min(delay, left))
            delay = min(delay * 2, POLL_CAP)
            detail = await self._keys.detail(key_id)
        return detail
