"""Project keys (`/project-keys`): API access, Kafka access and MCP scoping in one credential.

What only this kind knows: its URLs and permissions, the no-duplicates rule for its creates (as
for client credentials: an unknown outcome is never retried blindly), that a create's one-time
file must carry the secrets of each access asked for, and that a PATCH adding an access must
carry that access's new credentials.
"""

from __future__ import annotations

from typing import Any

from provisioner.errors import (
    AmbiguousCreate,
    ApiError,
    KafkaUsernameTaken,
    RequestFailed,
    UnusableAnswer,
    UnusableCreate,
)
from provisioner.http.retry import retrying
from provisioner.streamkap import project_key_answers as answers
from provisioner.streamkap.answers import Malformed, parsed
from provisioner.streamkap.client_credentials import AMBIGUOUS_STATUSES, LISTING_MAX_BYTES
from provisioner.streamkap.project_key_answers import (
    PatchedProjectKey,
    ProjectKeyDetail,
    ProjectKeyFile,
    ProjectKeySummary,
)
from provisioner.streamkap.project_key_bodies import NewProjectKey, ProjectKeyChange
from provisioner.streamkap.requests import Call, Requests

PROJECT_KEYS = "/project-keys"
#: The permissions its calls need. Streamkap documents only "the Project Keys write permission"
#: (in the Admin and Data Admin roles), not its name: these are named by analogy with
#: `fe.secure.*.tenantApiTokens` (docs/api.md, "Assumed where no source speaks").
READ = "fe.secure.read.projectKeys"
WRITE = "fe.secure.write.projectKeys"
DELETE = "fe.secure.delete.projectKeys"


class ProjectKeys:
    """Project keys over one request path: list, detail, create, patch, delete."""

    def __init__(self, requests: Requests) -> None:
        self._requests = requests

    async def list(self) -> list[ProjectKeySummary]:
        """Every key, each once, without secrets."""
        call = Call("GET", PROJECT_KEYS, needs=READ, max_bytes=LISTING_MAX_BYTES)
        body = await self._requests.call(call)
        return parsed("GET", PROJECT_KEYS, answers.parse_listing, body)

    async def detail(self, key_id: str) -> ProjectKeyDetail | None:
        """One key with its ACLs and allow list; None when there is no such key (404)."""
        path = f"{PROJECT_KEYS}/{key_id}"
        try:
            body = await self._requests.call(Call("GET", path, needs=READ))
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise
        return parsed("GET", path, answers.parse_detail, body)

    async def create(self, new: NewProjectKey) -> ProjectKeyFile:
        """Create once; an unknown outcome raises AmbiguousCreate instead of retrying blindly.

        An answer without the secrets of an access asked for (or for another Kafka user than
        the one asked for) raises UnusableCreate with the key's id: the caller deletes it and
        never delivers it. A taken Kafka username raises KafkaUsernameTaken.
        """
        payload = new.json()  # registers the password before anything is sent
        requests = self._requests
        retry = retrying(requests.config.max_attempts, requests.sleep, "create", key=new.name)
        async for attempt in retry:
            with attempt:
                body = await self._create_once(payload, new.name)
        return _created(new, body)

    async def patch(self, key_id: str, change: ProjectKeyChange) -> PatchedProjectKey:
        """Change a key in place; an access it adds must come with its new credentials."""
        path = f"{PROJECT_KEYS}/{key_id}"
        try:
            body = await self._requests.call(Call("PATCH", path, change.json(), needs=WRITE))
        except ApiError as exc:
            raise _taken(exc) from None
        patched = parsed("PATCH", path, answers.parse_patched, body)
        missing = _missing_new_credentials(change, patched)
        if missing:
            raise UnusableAnswer("PATCH", path, f"{missing}: the access it added cannot be used")
        if patched.detail.id != key_id:
            raise UnusableAnswer("PATCH", path, f"it answers for key {patched.detail.id}")
        return patched

    async def delete(self, key_id: str) -> None:
        """Ask for the deletion (asynchronous: the key goes `deleting`); 404 counts as gone."""
        try:
            await self._requests.call(Call("DELETE", f"{PROJECT_KEYS}/{key_id}", needs=DELETE))
        except ApiError as exc:
            if exc.status != 404:
                raise

    async def _create_once(self, payload: dict[str, Any], key: str) -> Any:
        try:
            return await self._requests.once(Call("POST", PROJECT_KEYS, payload, needs=WRITE))
        except RequestFailed as exc:
            if exc.sent:
                raise AmbiguousCreate(key, exc) from None
            raise
        except UnusableAnswer as exc:  # not JSON: whether it made a key is unknown
            raise AmbiguousCreate(key, exc) from None
        except ApiError as exc:
            if exc.status in AMBIGUOUS_STATUSES:
                raise AmbiguousCreate(key, exc) from None
            raise _taken(exc) from None


def _created(new: NewProjectKey, body: Any) -> ProjectKeyFile:
    """The checked one-time file of a create (see `ProjectKeys.create`)."""
    key_id = answers.created_id(body)
    if key_id is None:  # which key the create made, if any, is unknown
        unnamed = UnusableAnswer("POST", PROJECT_KEYS, "no project_key_id")
        raise AmbiguousCreate(new.name, unnamed)
    wants_kafka = new.kafka is not None
    try:
        made = answers.parse_file(body, wants_api=new.wants_api, wants_kafka=wants_kafka)
    except answers.MissingSecrets as exc:
        raise UnusableCreate(new.name, key_id, f"the answer carries {exc}") from None
    except Malformed as exc:
        raise UnusableCreate(new.name, key_id, f"the answer is malformed: {exc}") from None
    asked, got = new.kafka, made.kafka
    if asked is not None and got is not None and got.username != asked.username:
        problem = "the API made another Kafka user than the one asked for"
        raise UnusableCreate(new.name, key_id, problem)
    return made


def _missing_new_credentials(change: ProjectKeyChange, patched: PatchedProjectKey) -> str:
    if change.adds_kafka and patched.new_kafka_credentials is None:
        return "Kafka access was added but the answer carries no new_kafka_credentials"
    if change.adds_api and patched.new_api_credentials is None:
        return "API access was added but the answer carries no new_api_credentials"
    return ""


def _taken(exc: ApiError) -> ApiError:
    """A 409 on a project key is a taken Kafka username; any other error stays as it is."""
    if exc.status != 409 or isinstance(exc, KafkaUsernameTaken):
        return exc
    return KafkaUsernameTaken(exc.method, exc.path, exc.status, exc.detail)
