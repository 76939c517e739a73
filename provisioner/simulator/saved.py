"""The simulators' state kept in a file between processes, so that `--simulate` runs follow on.

Credentials, project keys and Vault's KV data are kept; tokens, faults and the call log belong to
one process. A file from before project keys existed reads as having none.
The file holds simulator secrets, which protect nothing, but it is written like a secret anyway:
mode 0600, replaced atomically.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from provisioner.simulator.project_keys_state import ProjectKeyRecord
from provisioner.simulator.state import CredentialRecord, SimulatorState
from provisioner.simulator.vault_state import Secret, VaultState, Version

FORMAT = 1


def save(path: Path, streamkap: SimulatorState, vault: VaultState) -> None:
    """Write both states to `path` (0600, temp file then rename)."""
    document = {
        "format": FORMAT,
        "credentials": [_credential_json(record) for record in streamkap.live()],
        "project_keys": [_project_key_json(key) for key in streamkap.project_keys.live()],
        "vault": [_secret_json(key, secret) for key, secret in vault.saved().items()],
    }
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        json.dump(document, file, indent=1)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temp, path)


def load(path: Path, streamkap: SimulatorState, vault: VaultState) -> bool:
    """Restore both states from `path`; False when there is none, ValueError when unreadable."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return False
    try:
        document = json.loads(text)
        if document.get("format") != FORMAT:
            raise ValueError(f"unknown format {document.get('format')!r}")
        records = [_credential(item) for item in document["credentials"]]
        keys = [_project_key(item) for item in document.get("project_keys", [])]
        secrets = dict(_secret(item) for item in document["vault"])
    except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not a simulator state file ({type(exc).__name__}: {exc})") from None
    streamkap.restore(records)
    streamkap.project_keys.restore(keys)
    vault.restore(secrets)
    return True


def _credential_json(record: CredentialRecord) -> dict[str, Any]:
    return {
        "client_id": record.client_id,
        "secret": record.secret,
        "description": record.description,
        "service_id": record.service_id,
        "role_ids": list(record.role_ids),
        "permission_ids": list(record.permission_ids),
        "created_at": record.created_at.isoformat(),
        "created_by": None if record.created_by is None else dict(record.created_by),
    }


def _credential(item: dict[str, Any]) -> CredentialRecord:
    return CredentialRecord(
        client_id=str(item["client_id"]),
        secret=str(item["secret"]),
        description=item["description"],
        service_id=item["service_id"],
        role_ids=tuple(item["role_ids"]),
        permission_ids=tuple(item["permission_ids"]),
        created_at=datetime.fromisoformat(item["created_at"]),
        created_by=item.get("created_by"),
    )


#: The fields of a project key kept as they are (strings, booleans, None), beside the times and
#: tuples converted below.
_KEY_TIMES = ("created_at", "last_used_at", "settles_at")
_KEY_TUPLES = ("role_ids", "permission_ids", "allowed_tools", "blocked_tools")


def _project_key_json(key: ProjectKeyRecord) -> dict[str, Any]:
    item = {name: getattr(key, name) for name in ProjectKeyRecord.__dataclass_fields__}
    item.update({name: _time_json(item[name]) for name in _KEY_TIMES})
    item.update({name: list(item[name]) for name in _KEY_TUPLES})
    item["kafka_acls"] = [dict(acl) for acl in key.kafka_acls]
    item["created_by"] = None if key.created_by is None else dict(key.created_by)
    return item


def _project_key(item: dict[str, Any]) -> ProjectKeyRecord:
    fields = {name: item[name] for name in ProjectKeyRecord.__dataclass_fields__}
    fields.update({name: _time(fields[name]) for name in _KEY_TIMES})
    fields.update({name: tuple(fields[name]) for name in _KEY_TUPLES})
    fields["kafka_acls"] = tuple(dict(acl) for acl in fields["kafka_acls"])
    return ProjectKeyRecord(**fields)


def _secret_json(key: tuple[str, str, str], secret: Secret) -> dict[str, Any]:
    return {
        "key": list(key),
        "created_time": secret.created_time.isoformat(),
        "updated_time": secret.updated_time.isoformat(),
        "versions": [
            {
                "number": version.number,
                "data": version.data,
                "created_time": version.created_time.isoformat(),
                "deletion_time": _time_json(version.deletion_time),
                "destroyed": version.destroyed,
            }
            for version in secret.versions.values()
        ],
        "custom_metadata": secret.custom_metadata,
    }


def _secret(item: dict[str, Any]) -> tuple[tuple[str, str, str], Secret]:
    namespace, mount, path = item["key"]
    versions = {
        int(v["number"]): Version(
            int(v["number"]),
            v["data"],
            datetime.fromisoformat(v["created_time"]),
            _time(v["deletion_time"]),
            bool(v["destroyed"]),
        )
        for v in item["versions"]
    }
    created, updated = (datetime.fromisoformat(item[k]) for k in ("created_time", "updated_time"))
    custom = {str(k): str(v) for k, v in (item.get("custom_metadata") or {}).items()}
    return (str(namespace), str(mount), str(path)), Secret(created, updated, versions, custom)


def _time_json(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)
