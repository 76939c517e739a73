"""Role references match an id, key or name with case, spaces, `_` and `-` ignored."""

from __future__ import annotations

import pytest

from provisioner.model import Role
from provisioner.reconcile.resolve import RoleIndex

CATALOGUE = (
    Role("role-admin", "Admin", "Admin"),
    Role("role-data-admin", "DataAdmin", "Data Admin"),
    Role("role-read-only", "ReadOnly", "Read Only"),
)


@pytest.mark.parametrize(
    "reference", ["read_only", "Read Only", "ReadOnly", "readonly", "READ-ONLY", "role-read-only"]
)
def test_every_spelling_of_a_role_finds_it(reference: str) -> None:
    assert RoleIndex(CATALOGUE).resolve(reference).id == "role-read-only"


def test_an_exact_id_wins_over_a_loose_match_of_another_role() -> None:
    roles = (*CATALOGUE, Role("readonly", "Legacy", "Legacy"))
    assert RoleIndex(roles).resolve("readonly").id == "readonly"


def test_a_reference_matching_two_roles_is_refused() -> None:
    roles = (*CATALOGUE, Role("role-ro-2", "read_only", "Viewer"))
    with pytest.raises(ValueError, match="ambiguous role 'Read-Only': it matches") as caught:
        RoleIndex(roles).resolve("Read-Only")
    assert "role-read-only" in str(caught.value)
    assert "role-ro-2" in str(caught.value)


def test_an_unknown_role_suggests_the_closest_and_lists_the_available() -> None:
    with pytest.raises(ValueError, match="unknown role") as caught:
        RoleIndex(CATALOGUE).resolve("raed_only")
    assert str(caught.value) == (
        "unknown role 'raed_only'; did you mean 'Read Only'? "
        "(available: Admin, Data Admin, Read Only)"
    )


def test_an_unknown_role_far_from_any_lists_the_available_only() -> None:
    with pytest.raises(ValueError, match="unknown role") as caught:
        RoleIndex(CATALOGUE).resolve("superuser")
    assert str(caught.value) == "unknown role 'superuser' (available: Admin, Data Admin, Read Only)"
