"""Resolve the role references manifests use (keys, names or ids) to the ids the API wants."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from provisioner.errors import ManifestError, did_you_mean
from provisioner.manifest import Manifests
from provisioner.reconcile.model import DesiredCredential, Role


def resolve_roles(manifests: Manifests, roles: Sequence[Role]) -> tuple[DesiredCredential, ...]:
    """Every credential with `role_ids` filled; ManifestError lists each unknown reference."""
    index: dict[str, str] = {}
    for role in roles:  # ids win over keys, keys over names, when they collide
        index.setdefault(role.name, role.id)
        index.setdefault(role.name.lower(), role.id)
    for role in roles:
        index[role.key] = role.id
    for role in roles:
        index[role.id] = role.id
    problems: dict[str, None] = {}
    resolved: list[DesiredCredential] = []
    for credential in manifests.credentials:
        ids = []
        for ref in credential.roles:
            role_id = index.get(ref) or index.get(ref.lower())
            if role_id is None:
                hint = did_you_mean(ref, (role.key for role in roles))
                where = manifests.where(credential.roles_origin)
                problems[f"{where}: unknown role {ref!r}{hint}"] = None
            else:
                ids.append(role_id)
        resolved.append(dataclasses.replace(credential, role_ids=tuple(dict.fromkeys(ids))))
    if problems:
        known = ", ".join(sorted(role.key for role in roles)) or "none"
        raise ManifestError(list(problems), hints=[f"(known roles: {known})"])
    return tuple(resolved)
