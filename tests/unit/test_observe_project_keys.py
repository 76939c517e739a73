"""What observe makes of project keys' sink records: whole records only, permissions."""

from __future__ import annotations

import dataclasses

from provisioner.model import CredentialKind, KafkaAccess, RemoteCredential
from provisioner.reconcile.observe import Recorded, whole_records, with_recorded_permissions


def test_a_record_is_whole_when_it_holds_every_access_the_key_shows() -> None:
    """A sink holding a key's id without an access the key shows holds nothing (its secret is
    lost); an access the key does not show (while being set up, say) is not held against it."""
    kafka = KafkaAccess(username="orders-x-1a2b-c3d4")
    key = RemoteCredential(
        "pk1",
        None,
        frozenset(),
        None,
        None,
        kind=CredentialKind.PROJECT_KEY,
        api_client_id="cc1",
        kafka=kafka,
    )
    holdings = {"o/x": {"a": "pk1", "b": "pk1", "c": "pk1"}}
    recorded = {
        ("o/x", "a"): Recorded("pk1", "cc1", "orders-x-1a2b-c3d4", frozenset()),
        ("o/x", "b"): Recorded("pk1", "cc1", None, frozenset()),  # Kafka never delivered
        ("o/x", "c"): Recorded("pk1", None, "orders-x-1a2b-c3d4", frozenset()),
    }
    assert whole_records(holdings, [key], recorded) == {"o/x": {"a": "pk1", "b": None, "c": None}}
    hidden = dataclasses.replace(key, api_client_id=None, kafka=None)
    assert whole_records(holdings, [hidden], recorded) == holdings


def test_permissions_come_from_the_records_that_name_some() -> None:
    """The API lists none; a record naming none (the env sink keeps none) says nothing."""
    key = RemoteCredential(
        "pk1", None, frozenset(), None, None, kind=CredentialKind.PROJECT_KEY, api_client_id="cc1"
    )
    silent = {("o/x", "env"): Recorded("pk1", "cc1", None, frozenset())}
    assert with_recorded_permissions([key], silent) == [key]
    named = {**silent, ("o/x", "file"): Recorded("pk1", "cc1", None, frozenset({"p1"}))}
    (found,) = with_recorded_permissions([key], named)
    assert found.permission_ids == frozenset({"p1"})
