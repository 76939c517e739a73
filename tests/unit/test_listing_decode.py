"""The listing decoded item by item gives what decoding it whole gives, errors included."""

from __future__ import annotations

import json
from typing import Any

import pytest

from provisioner.streamkap.answers import Listing, Malformed, decode_listing, parse_listing


def item(client_id: str, key: str = "svc/a", roles: tuple[str, ...] = ("r1",)) -> dict[str, Any]:
    return {
        "client_id": client_id,
        "description": f"Some text [provisioner:{key}]",
        "created_at": "2024-06-01T00:00:00Z",
        "roles": [{"id": r, "name": r.upper(), "permissions": ["p1", "p2"]} for r in roles],
        "service_id": None,
        "secret": "abc******xyz",
    }


def whole(raw: bytes) -> Any:
    """What the client did before: the answer decoded whole (`{}` when empty), then parsed."""
    return parse_listing(json.loads(raw) if raw else {})


VALID = [
    b"[]",
    b" \n[ \t]\r\n",
    json.dumps([item("c1"), item("c2", "svc/b", ("r1", "r2"))]).encode(),
    json.dumps([item("c1"), item("c1", "svc/other")], indent=4).encode(),  # repeated: first kept
    json.dumps([item("c1", "svc/\u00e9t\u00e9")], ensure_ascii=False).encode(),
    json.dumps([item("c1", "svc/\u00e9t\u00e9")], ensure_ascii=False).encode("utf-16"),
    b"\xef\xbb\xbf" + json.dumps([item("c1")]).encode(),  # a UTF-8 byte order mark
    b'[{"client_id": "c1", "roles": null, "created_at": "not a time"}]',
    b'[{"client_id": "c1", "permission_ids": ["p1", 2]},'
    b' {"client_id": "c2", "permission_ids": []}]',
]


@pytest.mark.parametrize("raw", VALID)
def test_a_valid_listing_is_parsed_as_it_would_be_whole(raw: bytes) -> None:
    decoded = decode_listing(raw)
    assert isinstance(decoded, Listing)  # parsed item by item, not decoded whole
    assert parse_listing(decoded) == whole(raw)


GOOD = json.dumps(item("c1"))
MALFORMED = [
    b"",
    b"{}",
    b'"text"',
    b"[" + GOOD.encode() + b", 3]",  # a non-object after a valid item
    b"[3, " + GOOD.encode() + b"]",
    b"[" + GOOD.encode() + b', {"client_id": 7}]',
    b'[{"client_id": ""}]',
    b'[{"client_id": "c1", "roles": [{"id": 5}]}]',
    b'[{"client_id": "c1", "roles": [{"id": "r"}, 2]}, 4]',  # the list is checked before items
]


@pytest.mark.parametrize("raw", MALFORMED)
def test_a_malformed_listing_is_refused_with_the_same_words(raw: bytes) -> None:
    with pytest.raises(Malformed) as expected:
        whole(raw)
    with pytest.raises(Malformed) as got:
        parse_listing(decode_listing(raw))
    assert str(got.value) == str(expected.value)


NOT_JSON = [
    b"[" + GOOD.encode() + b"] trailing",
    b"[" + GOOD.encode() + b",]",
    b"[" + GOOD.encode(),
    b"[" + GOOD.encode() + b" " + GOOD.encode() + b"]",
    b"[" + GOOD.encode()[:-5],
    b"[\xff]",
    b"<html>busy</html>",
]


@pytest.mark.parametrize("raw", NOT_JSON)
def test_what_is_not_json_is_still_not_json(raw: bytes) -> None:
    with pytest.raises((json.JSONDecodeError, UnicodeDecodeError)) as expected:
        json.loads(raw)
    with pytest.raises((json.JSONDecodeError, UnicodeDecodeError)) as got:
        decode_listing(raw)  # the client says "not JSON" for either
    assert type(got.value) is type(expected.value)


def test_equal_role_sets_are_kept_once() -> None:
    raw = json.dumps([item("c1"), item("c2", "svc/b"), item("c3", "svc/c", ("r2",))]).encode()
    first, second, third = parse_listing(decode_listing(raw))
    assert first.role_ids == second.role_ids == frozenset({"r1"})
    assert first.role_ids is second.role_ids
    assert third.role_ids == frozenset({"r2"})
