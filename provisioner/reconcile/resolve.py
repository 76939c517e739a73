"""Resolve the role references manifests use (ids, keys or names) to the ids the API wants.

People write roles as the product shows them ("Read Only"), as the Terraform provider's keys
(`ReadOnly`) or in their own style (`read_only`): a reference matches a role's id, key or name
with case, spaces, `_` and `-` ignored. An id matches exactly first; a reference that matches
several roles is refused rather than guessed.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Sequence

from provisioner.errors import ManifestError
from provisioner.manifest import Manifests
from provisioner.model import DesiredCredential, Role

_IGNORED = re.compile(r"[\s_-]+")


def normalized(reference: str) -> str:
    """The form references are compared in: lower case, no spaces, `_` or `-`."""
    return _IGNORED.sub("", reference).lower()


class RoleIndex:
    """Every way a role can be referred to, for one listing of `GET /auth/roles`."""

    def __init__(self, roles: Sequence[Role]) -> None:
        self.roles = roles
        self._ids = {role.id: role for role in roles}
        self._loose: dict[str, dict[str, Role]] = {}
        for role in roles:
            for spelling in (role.id, role.key, role.name):
                self._loose.setdefault(normalized(spelling), {})[role.id] = role

    def resolve(self, reference: str) -> Role:
        """The one role `reference` names; ValueError (a message for people) otherwise."""
        if reference in self._ids:
            return self._ids[reference]
        found = self._loose.get(normalized(reference), {})
        if len(found) == 1:
            return next(iter(found.values()))
        if found:
            names = ", ".join(sorted(f"{r.name!r} (id {r.id})" for r in found.values()))
            raise ValueError(f"ambiguous role {reference!r}: it matches {names}; use the id")
        raise ValueError(f"unknown role {reference!r}{self._suggestion(reference)}")

    def _suggestion(self, reference: str) -> str:
        names = sorted(role.name for role in self.roles)
        if not names:
            return " (the API lists no roles)"
        by_form = {normalized(name): name for name in names}
        close = difflib.get_close_matches(normalized(reference), by_form, n=1, cutoff=0.6)
        hint = f"; did you mean {by_form[close[0]]!r}?" if close else ""
        return f"{hint} (available: {', '.join(names)})"


def resolve_roles(manifests: Manifests, roles: Sequence[Role]) -> tuple[DesiredCredential, ...]:
    """Every credential with `role_ids` and `role_names` filled; ManifestError lists each bad
    reference once."""
    index = RoleIndex(roles)
    problems: dict[str, None] = {}
    resolved: list[DesiredCredential] = []
    shared: dict[tuple[str, ...], tuple[str, ...]] = {}  # equal tuples kept once: a few distinct
    for credential in manifests.credentials:
        found: dict[str, str] = {}  # role id -> its name, in the manifest's order, once each
        for ref in credential.roles:
            try:
                role = index.resolve(ref)
            except ValueError as exc:
                problems[f"{manifests.where(credential.roles_origin)}: {exc}"] = None
            else:
                found.setdefault(role.id, role.name)
        ids, names = tuple(found), tuple(found.values())
        ids, names = shared.setdefault(ids, ids), shared.setdefault(names, names)
        resolved.append(dataclasses.replace(credential, role_ids=ids, role_names=names))
    if problems:
        raise ManifestError(list(problems))
    return tuple(resolved)
