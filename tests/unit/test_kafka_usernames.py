"""Derived Kafka usernames over many keys: always what the API accepts, stable for a key, unique
per key where the readable part had to be cut, a new generation each time; passwords from a
CSPRNG, redacted wherever they show up."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from provisioner.kafka_usernames import (
    derive,
    new_generation,
    new_password,
    readable_of,
    readable_part,
    same_user,
)
from provisioner.logs import redact

API_USERNAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,22}[a-z0-9])?$")
SETTINGS = settings(max_examples=300, deadline=None)

# Service and credential names as people write them, and worse: any text but the colon that
# separates an owner (owner and key names never hold one).
names = st.text(
    alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FF, exclude_characters=":"),
    max_size=60,
)
owners = st.sampled_from(["default", "team-a", "Platform_Team"])
readables = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,17}[a-z0-9])?", fullmatch=True)


def owned(owner: str, service: str, credential: str) -> str:
    key = f"{service}/{credential}"
    return key if owner == "default" else f"{owner}:{key}"


@SETTINGS
@given(owner=owners, service=names, credential=names, readable=st.none() | readables)
def test_every_derived_username_is_one_the_api_accepts(
    owner: str, service: str, credential: str, readable: str | None
) -> None:
    key = owned(owner, service, credential)
    username = derive(key, readable, new_generation())
    assert API_USERNAME.match(username), username
    assert len(username) <= 24
    assert same_user(key, readable, username)
    assert readable_of(username) == readable_part(key, readable)


@SETTINGS
@given(readable=readables, generation=st.just("ab12"))
def test_a_readable_part_the_manifest_gives_is_kept_as_written(
    readable: str, generation: str
) -> None:
    assert derive("svc/cred", readable, generation) == f"{readable}-{generation}"


def test_a_key_reads_as_its_sanitised_name_with_a_hash_of_the_owned_key() -> None:
    username = derive("Orders_Reader/stream", None, "g1g1")
    # "orders-reader-stream" cut to 14 characters, its trailing dash dropped, then the hash.
    assert re.fullmatch(r"orders-reader-[a-z0-9]{4}-g1g1", username), username
    readable = readable_of(username)
    assert readable == readable_part("Orders_Reader/stream", None)
    # The same key derives the same readable part in every process and release (a hash of the
    # key, not a random, nor Python's salted hash()): else every live key would show as drift.
    assert readable == "orders-reader-80k1"
    assert readable_part("Orders_Reader/stream", None) != readable_part(
        "orders-reader/stream", None
    )


def test_the_same_key_of_two_owners_reads_differently() -> None:
    assert readable_part("svc/cred", None) != readable_part("team-a:svc/cred", None)
    assert readable_part("svc/cred", None).startswith("svc-cred-")


def test_keys_that_sanitise_alike_or_share_a_long_prefix_get_readable_parts_of_their_own() -> None:
    """The hash keeps keys apart exactly where sanitising or cutting made them alike."""
    keys = [f"warehouse-loader/{n}" for n in range(300)]  # all cut to "warehouse-load"
    keys += ["a.b/c", "a_b/c", "a-b/c", "A B/c", "a/b.c", "a/b-c"]  # all sanitise to "a-b-c"
    readable = {readable_part(key, None) for key in keys}
    assert len(readable) == len(keys)
    assert all(len(part) <= 19 for part in readable)


def test_a_key_with_nothing_readable_is_its_hash() -> None:
    part = readable_part("__/..", None)
    assert re.fullmatch(r"[a-z0-9]{4}", part)
    assert API_USERNAME.match(derive("__/..", None, new_generation()))


def test_each_generation_is_new() -> None:
    generations = {new_generation() for _ in range(200)}
    assert all(re.fullmatch(r"[a-z0-9]{4}", g) for g in generations)
    assert len(generations) > 190  # 36**4 values: a repeat in 200 is rare, 10 would be broken


def test_a_changed_manifest_username_is_not_the_same_user() -> None:
    live = derive("svc/cred", "orders", "ab12")
    assert same_user("svc/cred", "orders", live)
    assert not same_user("svc/cred", "payments", live)
    assert not same_user("svc/cred", None, live)  # the username was dropped from the manifest
    assert same_user("svc/cred", None, derive("svc/cred", None, "zz99"))
    assert not same_user("svc/other", None, derive("svc/cred", None, "zz99"))
    assert not same_user("svc/cred", "orders", "orders")  # no generation: not one we derived


def test_a_password_is_long_random_and_redacted() -> None:
    first, second = new_password(), new_password()
    text = first.get_secret_value()
    assert len(text) >= 32
    assert text != second.get_secret_value()
    assert text not in repr(first)
    assert redact(f"password={text}") == "password=[redacted]"
