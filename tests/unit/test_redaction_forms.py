"""Issue 21, item 4: a registered secret is redacted in the forms an echo gives it, and `cut`
redacts before it cuts."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from urllib.parse import quote, urlencode

import pytest

from provisioner.errors import ApiError, SinkError
from provisioner.logs import REDACTED, cut, forget_secrets, redact, register_secret

SECRET = 'k3y/with+"quotes"&spaces é-0123'


@pytest.fixture(autouse=True)
def _registered() -> Iterator[None]:
    register_secret(SECRET)
    yield
    forget_secrets()


@pytest.mark.parametrize("before", ["", "a", "ab", "client-id:", "client-id-1:"])
def test_base64_inside_a_longer_encoded_text_is_redacted_at_every_alignment(before: str) -> None:
    header = "Basic " + base64.b64encode(f"{before}{SECRET}!".encode()).decode()
    shown = redact(header)
    assert REDACTED in shown
    assert len(shown) < len(header) - 30  # only a few characters either side are left


def test_url_safe_base64_and_base64_alone_are_redacted() -> None:
    alone = base64.b64encode(SECRET.encode()).decode()
    assert redact(f'data: {{"secret": "{alone}"}}') == f'data: {{"secret": "{REDACTED}"}}'
    awkward = "live->>>???-secret-value"  # its base64 holds '+' and '/': the URL-safe form differs
    register_secret(awkward)
    standard = base64.b64encode(awkward.encode()).decode()
    url_safe = base64.urlsafe_b64encode(awkward.encode()).decode()
    assert url_safe != standard
    assert redact(f"token={url_safe}") == f"token={REDACTED}"
    assert url_safe[4:12] not in redact(url_safe)


def test_url_encoded_and_json_escaped_forms_are_redacted() -> None:
    echoes = [
        "GET /login?" + urlencode({"secret": SECRET}),
        "POST /x?s=" + quote(SECRET, safe=""),
        json.dumps({"echo": SECRET}),
        json.dumps({"echo": SECRET}, ensure_ascii=False),
        json.dumps({"echo": SECRET}).replace("/", "\\/"),
        repr({"echo": SECRET}),
    ]
    for echo in echoes:
        assert REDACTED in redact(echo), echo
        assert "quotes" not in redact(echo), echo


def test_cut_redacts_before_it_cuts_at_every_offset() -> None:
    for inside in range(len(SECRET) + 1):
        shown = cut("x" * (50 - inside) + SECRET + "y" * 500, 50)
        assert len(shown) == 51
        assert shown.endswith("…")
        assert not any(SECRET[i : i + 8] in shown for i in range(len(SECRET) - 7))


def test_cut_of_a_huge_text_shows_its_redacted_head() -> None:
    shown = cut("z" * 180 + SECRET + "w" * 4_000_000, 200)
    assert shown == "z" * 180 + REDACTED + "w" * 10 + "…"


def test_cut_leaves_a_short_text_whole() -> None:
    assert cut("short", 200) == "short"


def test_an_api_error_cuts_its_detail_only_when_shown() -> None:
    late = "registered-after-the-error-0987"
    error = ApiError("GET", "/p", 500, "x" * 990 + late)
    register_secret(late)
    assert late[:8] not in str(error)
    assert late[:8] not in repr(error)


def test_the_repr_of_an_error_is_redacted() -> None:
    error = SinkError("vault", f"echo {SECRET}")
    assert SECRET not in repr(error)
    assert repr(error) == f"SinkError(\"sink 'vault': echo {REDACTED}\")"
