"""Durations are read and shown as manifests write them; shown exactly wherever they can be."""

from __future__ import annotations

from datetime import timedelta

import pytest

from provisioner.manifest.durations import format_duration, parse_duration
from provisioner.model import Kind
from provisioner.reconcile.plan import plan
from tests.unit.test_plan import NOW, desired, remote


@pytest.mark.parametrize("text", ["90m", "36h", "2w", "100d", "45s", "25h", "0s"])
def test_a_manifest_duration_is_shown_as_written(text: str) -> None:
    assert format_duration(parse_duration(text)) == text


@pytest.mark.parametrize(
    ("age", "shown"),
    [
        (timedelta(days=100, seconds=3), "100d"),
        (timedelta(minutes=90, seconds=5), "1h"),
        (timedelta(seconds=59), "59s"),
        (timedelta(days=21), "3w"),
    ],
)
def test_an_age_is_rounded_down_to_its_largest_whole_unit(age: timedelta, shown: str) -> None:
    assert format_duration(age) == shown


def test_a_rotation_detail_spells_rotate_after_exactly() -> None:
    """`rotate_after: 90m` was shown as `1h` by a truncating formatter."""
    wanted = desired(rotate_after=timedelta(minutes=90))
    result = plan([wanted], [remote("c1", age=timedelta(hours=2))], {}, now=NOW)
    assert result.actions[0].kind is Kind.REPLACE
    assert result.actions[0].detail == "2h old, rotate_after 90m"
