"""The reconciliation rules of project keys, without any I/O: what a PATCH changes in place,
what replaces a key, deletes that failed, kind changes, and retirement that waits for use."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from provisioner.cli.render import plan_summary_line, summarize
from provisioner.kafka_usernames import derive
from provisioner.model import (
    AclEntry,
    Action,
    CredentialKind,
    DesiredCredential,
    KafkaAccess,
    Kind,
    McpScope,
    Plan,
    Reason,
    RemoteCredential,
    State,
    marked_description,
)
from provisioner.reconcile.budget import counts, within_budget
from provisioner.reconcile.plan import plan
from tests.support.factories import desired as make_desired

NOW = datetime(2026, 11, 1, tzinfo=UTC)
KEY = "orders/stream"
HELD = {KEY: {"local": "pk1"}}
READ_ORDERS = frozenset(
    AclEntry("TOPIC", "orders.", "PREFIXED", operation) for operation in ("READ", "DESCRIBE")
)
KAFKA = KafkaAccess(acls=READ_ORDERS, allow_ips=frozenset({"10.0.0.0/8"}))
PK = CredentialKind.PROJECT_KEY


def key(
    *,
    roles: tuple[str, ...] = ("r1",),
    kafka: KafkaAccess | None = KAFKA,
    **options: Any,
) -> DesiredCredential:
    base = make_desired("stream", service="orders", roles=roles, **options)
    return dataclasses.replace(base, kind=PK, kafka=kafka)


LISTED_KAFKA = dataclasses.replace(KAFKA, username=derive(KEY, None, "a1b2"))


def live(
    key_id: str = "pk1",
    *,
    roles: frozenset[str] = frozenset({"r1"}),
    kafka: KafkaAccess | None = LISTED_KAFKA,
    api: bool = True,
    age: timedelta = timedelta(days=1),
    **fields: Any,
) -> RemoteCredential:
    """A listed project key of KEY, by default with API access and the Kafka user derived
    from its key (generation `a1b2`)."""
    listed: dict[str, Any] = {
        "description": marked_description(None, KEY),
        "name": KEY,
        "permission_ids": None,
        **fields,
    }
    return RemoteCredential(
        client_id=key_id,
        role_ids=roles if api else frozenset(),
        service_id=None,
        created_at=NOW - age,
        kind=PK,
        api_client_id=f"{key_id}-api" if api else None,
        kafka=kafka,
        **listed,
    )


def kinds(result: Plan) -> list[tuple[Kind, Reason]]:
    return [(a.kind, a.reason) for a in result.actions]


def only(result: Plan) -> Action:
    (action,) = result.actions
    return action


def test_a_converged_key_is_left_alone() -> None:
    result = plan([key()], [live()], HELD, now=NOW)
    assert kinds(result) == [(Kind.NOOP, Reason.UP_TO_DATE)]
    assert only(result).credential_kind is PK


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"roles": ("r2",)}, Reason.DRIFT_ROLES),
        ({"description": "reads orders"}, Reason.DRIFT_DESCRIPTION),
        (
            {"kafka": dataclasses.replace(KAFKA, allow_ips=frozenset({"10.1.0.0/16"}))},
            Reason.DRIFT_KAFKA,
        ),
        (
            {
                "kafka": dataclasses.replace(
                    KAFKA, acls=READ_ORDERS | {AclEntry("GROUP", "g", "LITERAL", "READ")}
                )
            },
            Reason.DRIFT_KAFKA,
        ),
    ],
)
def test_what_a_patch_changes_is_updated_in_place(change: dict[str, Any], reason: Reason) -> None:
    action = only(plan([key(**change)], [live()], HELD, now=NOW))
    assert (action.kind, action.reason, action.client_id) == (Kind.UPDATE, reason, "pk1")
    assert action.targets == ("local",)  # its record is refreshed, secrets kept
    assert action.credential_kind is PK


def test_mcp_scoping_is_updated_in_place() -> None:
    wanted = dataclasses.replace(
        key(), mcp=McpScope("read-only", block=frozenset({"delete_pipeline"}))
    )
    action = only(plan([wanted], [live()], HELD, now=NOW))
    assert (action.kind, action.reason) == (Kind.UPDATE, Reason.DRIFT_MCP)
    assert action.detail == "mcp profile none -> profile read-only block delete_pipeline"


def test_a_renamed_key_is_updated_in_place() -> None:
    action = only(plan([key()], [live(name="orders/old")], HELD, now=NOW))
    assert (action.kind, action.reason) == (Kind.UPDATE, Reason.DRIFT_NAME)


def test_adding_kafka_access_is_a_patch() -> None:
    action = only(plan([key()], [live(kafka=None)], HELD, now=NOW))
    assert (action.kind, action.reason, action.detail) == (
        Kind.UPDATE,
        Reason.ACCESS_ADDED,
        "adds Kafka access",
    )


def test_adding_api_access_is_a_patch() -> None:
    action = only(plan([key()], [live(api=False)], HELD, now=NOW))
    assert (action.kind, action.reason, action.detail) == (
        Kind.UPDATE,
        Reason.ACCESS_ADDED,
        "adds API access",
    )


@pytest.mark.parametrize(
    ("wanted", "listed", "detail"),
    [
        (key(kafka=None), live(), "removes Kafka access"),
        (key(roles=()), live(), "removes API access"),
        (
            key(kafka=dataclasses.replace(KAFKA, username="reader")),
            live(),
            "Kafka username (kafka.username changed)",
        ),
        (
            key(kafka=dataclasses.replace(KAFKA, schema_registry=True)),
            live(),
            "schema_registry false -> true",
        ),
    ],
)
def test_what_no_patch_changes_replaces_the_key(
    wanted: DesiredCredential, listed: RemoteCredential, detail: str
) -> None:
    action = only(plan([wanted], [listed], HELD, now=NOW))
    assert (action.kind, action.reason, action.detail) == (
        Kind.REPLACE,
        Reason.DRIFT_ACCESS,
        detail,
    )
    assert action.retire == ("pk1",)


def test_a_permissions_change_replaces_the_key() -> None:
    wanted = key(roles=(), permissions=("p2",))
    listed = live(roles=frozenset(), permission_ids=frozenset({"p1"}))
    action = only(plan([wanted], [listed], HELD, now=NOW))
    assert (action.kind, action.reason) == (Kind.REPLACE, Reason.DRIFT_PERMISSIONS)


def test_a_patch_together_with_a_replace_is_one_replace_naming_both() -> None:
    wanted = key(roles=("r2",), kafka=None)
    action = only(plan([wanted], [live()], HELD, now=NOW))
    assert (action.kind, action.reason) == (Kind.REPLACE, Reason.DRIFT_ACCESS)
    assert action.detail == "removes Kafka access; roles r1 -> r2"


def test_a_key_due_for_rotation_is_replaced() -> None:
    wanted = key(rotate_after=timedelta(days=30))
    action = only(plan([wanted], [live(age=timedelta(days=31))], HELD, now=NOW))
    assert (action.kind, action.reason, action.credential_kind) == (
        Kind.REPLACE,
        Reason.ROTATION,
        PK,
    )


def test_a_failed_delete_is_tried_again_and_not_counted_by_the_budget() -> None:
    failed = live("pk0", state=State.DELETE_FAILED)
    result = plan([key()], [live(), failed], HELD, now=NOW)
    assert kinds(result) == [(Kind.NOOP, Reason.UP_TO_DATE), (Kind.DELETE, Reason.DELETE_FAILED)]
    retry = result.actions[1]
    assert (retry.client_id, retry.key, retry.credential_kind) == ("pk0", KEY, PK)
    assert not counts(retry)
    assert not within_budget(result, "0").exceeded


def test_a_key_being_deleted_is_neither_live_nor_an_orphan() -> None:
    going = live("pk0", state=State.DELETING)
    assert kinds(plan([key()], [live(), going], HELD, now=NOW, prune=True)) == [
        (Kind.NOOP, Reason.UP_TO_DATE)
    ]
    assert kinds(plan([], [going], {}, now=NOW, prune=True)) == []


def test_an_orphan_key_is_deleted_on_its_own_api_with_prune() -> None:
    action = only(plan([], [live()], {}, now=NOW, prune=True))
    assert (action.kind, action.reason, action.credential_kind) == (Kind.DELETE, Reason.ORPHAN, PK)


def test_an_unmarked_key_is_never_touched() -> None:
    stranger = dataclasses.replace(live(), description="made in the console")
    assert kinds(plan([], [stranger], {}, now=NOW, prune=True)) == []


def test_another_owners_failed_delete_is_left_alone() -> None:
    theirs = dataclasses.replace(
        live(state=State.DELETE_FAILED), description=marked_description(None, KEY, "team-b")
    )
    assert kinds(plan([], [theirs], {}, now=NOW, prune=True)) == []


# --- retirement that waits for consumers (grace_max) -----------------------------------------

GRACE = timedelta(hours=1)
NEW_AGE = timedelta(hours=2)  # the new key: older than grace


def replaced(
    *, used_after_new: timedelta | None, grace_max: timedelta | None, new_age: timedelta = NEW_AGE
) -> Plan:
    """A key replaced `new_age` ago (the sinks hold pk2); pk1, the old one, was last used
    `used_after_new` after pk2 was made (None: never used)."""
    new = live("pk2", age=new_age)
    used = None if used_after_new is None else NOW - new_age + used_after_new
    old = live("pk1", age=timedelta(days=10), last_used_at=used)
    wanted = dataclasses.replace(key(grace=GRACE), grace_max=grace_max)
    return plan([wanted], [old, new], {KEY: {"local": "pk2"}}, now=NOW)


def test_an_old_key_still_used_after_its_successor_is_kept_past_grace() -> None:
    """Used 30 minutes ago, after pk2 was made 2 hours ago: some consumer has not moved yet."""
    result = replaced(used_after_new=timedelta(minutes=90), grace_max=timedelta(days=7))
    assert kinds(result) == [(Kind.NOOP, Reason.UP_TO_DATE), (Kind.NOOP, Reason.IN_USE)]
    kept = result.actions[1]
    assert kept.client_id == "pk1"
    assert kept.detail.endswith(
        "kept until unused for 1h (grace), at most until 2026-11-07T22:00:00Z (grace_max 1w)"
    )


def test_an_old_key_unused_for_a_grace_is_deleted_though_used_after_its_successor() -> None:
    """Used 90 minutes ago, after pk2 was made: its consumers moved since, an hour ago and more."""
    result = replaced(used_after_new=timedelta(minutes=30), grace_max=timedelta(days=7))
    assert kinds(result) == [(Kind.NOOP, Reason.UP_TO_DATE), (Kind.DELETE, Reason.SUPERSEDED)]


def test_an_old_key_unused_since_its_successor_is_deleted_at_grace() -> None:
    before = replaced(used_after_new=-timedelta(minutes=5), grace_max=timedelta(days=7))
    never = replaced(used_after_new=None, grace_max=timedelta(days=7))
    for result in (before, never):
        assert kinds(result) == [(Kind.NOOP, Reason.UP_TO_DATE), (Kind.DELETE, Reason.SUPERSEDED)]


def test_at_grace_max_the_old_key_goes_whatever_its_use() -> None:
    used_10_minutes_ago = timedelta(days=1) - timedelta(minutes=10)
    result = replaced(
        used_after_new=used_10_minutes_ago, grace_max=timedelta(days=1), new_age=timedelta(days=1)
    )
    assert kinds(result) == [(Kind.NOOP, Reason.UP_TO_DATE), (Kind.DELETE, Reason.SUPERSEDED)]


def test_without_grace_max_use_does_not_keep_a_key() -> None:
    result = replaced(used_after_new=timedelta(minutes=90), grace_max=None)
    assert kinds(result) == [(Kind.NOOP, Reason.UP_TO_DATE), (Kind.DELETE, Reason.SUPERSEDED)]


def test_within_grace_the_old_key_waits_whatever_its_use() -> None:
    result = replaced(
        used_after_new=timedelta(minutes=5),
        grace_max=timedelta(days=7),
        new_age=timedelta(minutes=10),
    )
    assert kinds(result) == [(Kind.NOOP, Reason.UP_TO_DATE), (Kind.NOOP, Reason.IN_GRACE)]


def test_a_rotation_waits_while_the_old_key_is_still_in_use() -> None:
    """At most two live per key: a third is not made while the old one is kept for its users."""
    new = live("pk2", age=timedelta(days=40))
    old = live("pk1", age=timedelta(days=80), last_used_at=NOW - timedelta(minutes=30))
    wanted = dataclasses.replace(
        key(grace=GRACE, rotate_after=timedelta(days=30)), grace_max=timedelta(days=60)
    )
    result = plan([wanted], [old, new], {KEY: {"local": "pk2"}}, now=NOW)
    assert kinds(result) == [(Kind.NOOP, Reason.ROTATION), (Kind.NOOP, Reason.IN_USE)]


# --- a key whose kind changed -------------------------------------------------------------------


def client_credential(client_id: str, age: timedelta = timedelta(days=1)) -> RemoteCredential:
    return RemoteCredential(
        client_id=client_id,
        description=marked_description(None, KEY),
        role_ids=frozenset({"r1"}),
        service_id=None,
        created_at=NOW - age,
    )


def test_a_kind_change_creates_the_new_kind_and_keeps_the_old_until_it_is_delivered() -> None:
    result = plan([key()], [client_credential("cc1")], {KEY: {"local": "cc1"}}, now=NOW)
    assert kinds(result) == [(Kind.CREATE, Reason.MISSING), (Kind.NOOP, Reason.DRIFT_KIND)]
    create, kept = result.actions
    assert create.credential_kind is PK
    assert (kept.client_id, kept.credential_kind) == ("cc1", CredentialKind.CLIENT_CREDENTIAL)


def test_once_the_new_kind_is_delivered_the_old_credential_is_deleted_on_its_api() -> None:
    result = plan([key()], [client_credential("cc1"), live()], HELD, now=NOW)
    assert kinds(result) == [(Kind.NOOP, Reason.UP_TO_DATE), (Kind.DELETE, Reason.DRIFT_KIND)]
    gone = result.actions[1]
    assert (gone.client_id, gone.credential_kind) == ("cc1", CredentialKind.CLIENT_CREDENTIAL)
    assert counts(gone)


def test_plan_and_apply_summaries_say_what_is_kept_while_in_use() -> None:
    result = replaced(used_after_new=timedelta(minutes=90), grace_max=timedelta(days=7))
    note = "1 superseded kept past grace while still in use (grace_max)."
    assert plan_summary_line(result).endswith(note)
    assert summarize(result, []).line().endswith(note)


def test_a_held_key_still_being_set_up_is_not_counted_converged() -> None:
    action = only(plan([key()], [live(state=State.CREATING)], HELD, now=NOW))
    assert (action.kind, action.reason) == (Kind.NOOP, Reason.ACTIVATING)
    assert not plan([key()], [live(state=State.CREATING)], HELD, now=NOW).has_changes
    assert summarize(plan([key()], [live(state=State.CREATING)], HELD, now=NOW), []).unchanged == 0


# --- what the plan says is what the engine does: drifts no PATCH can carry replace ------------


def test_a_profile_the_manifest_does_not_name_is_the_keys_own() -> None:
    """No profile asked: one the API filled in (or an earlier manifest asked) stays, as a
    service_id the manifest does not name does; no PATCH could clear it, and a replace would
    come back every run."""
    listed = live(mcp=McpScope("full", block=frozenset({"delete_pipeline"})))
    wanted = dataclasses.replace(key(), mcp=McpScope(block=frozenset({"delete_pipeline"})))
    assert kinds(plan([wanted], [listed], HELD, now=NOW)) == [(Kind.NOOP, Reason.UP_TO_DATE)]
    other = dataclasses.replace(key(), mcp=McpScope(block=frozenset({"drop_topic"})))
    action = only(plan([other], [listed], HELD, now=NOW))
    assert (action.kind, action.reason) == (Kind.UPDATE, Reason.DRIFT_MCP)


def test_roles_becoming_permissions_replace_the_key() -> None:
    action = only(plan([key(roles=(), permissions=("p1",))], [live()], HELD, now=NOW))
    assert (action.kind, action.reason) == (Kind.REPLACE, Reason.DRIFT_PERMISSIONS)


def test_dropping_a_named_kafka_username_replaces_the_key() -> None:
    named = dataclasses.replace(KAFKA, username=derive(KEY, "reader", "a1b2"))
    action = only(plan([key()], [live(kafka=named)], HELD, now=NOW))
    assert (action.kind, action.reason) == (Kind.REPLACE, Reason.DRIFT_ACCESS)
    assert "reader" not in action.detail  # a Kafka username is half a login: never shown


def test_a_keys_api_client_listed_among_client_credentials_is_not_a_credential_of_its_own() -> None:
    """Should the API list a key's API access with the client credentials (with the key's
    description, marker included), it is the key's: no orphan, no kind change, no delete."""
    echoed = RemoteCredential(
        client_id="pk1-api",
        description=marked_description(None, KEY),
        role_ids=frozenset({"r1"}),
        service_id=None,
        created_at=NOW - timedelta(days=1),
    )
    assert kinds(plan([key()], [live(), echoed], HELD, now=NOW, prune=True)) == [
        (Kind.NOOP, Reason.UP_TO_DATE)
    ]


def test_ids_are_unique_only_on_their_own_api() -> None:
    """A client credential and a project key may share an id string: both are seen."""
    other = dataclasses.replace(
        client_credential("pk1"), description=marked_description(None, "a/b")
    )
    result = plan([key()], [live(), other], HELD, now=NOW, prune=True)
    assert kinds(result) == [(Kind.NOOP, Reason.UP_TO_DATE), (Kind.DELETE, Reason.ORPHAN)]
    assert result.actions[1].credential_kind is CredentialKind.CLIENT_CREDENTIAL


def test_a_services_service_id_is_no_drift_of_a_key() -> None:
    """A key's create takes no service_id: the one the API filled in stays (no replace loop)."""
    wanted = key(service_id="svc-orders")
    listed = dataclasses.replace(live(), service_id="svc-other")
    assert kinds(plan([wanted], [listed], HELD, now=NOW)) == [(Kind.NOOP, Reason.UP_TO_DATE)]


def test_a_lost_creates_recovery_knows_the_old_keys_api_client() -> None:
    """Kind changed back: should the API list the old key's API client among client
    credentials, a lost create's recovery must not delete it as its leftover."""
    wanted = dataclasses.replace(key(), kind=CredentialKind.CLIENT_CREDENTIAL, kafka=None)
    create = plan([wanted], [live()], {KEY: {"local": "pk1"}}, now=NOW).actions[0]
    assert create.kind is Kind.CREATE
    assert "pk1-api" in create.known
