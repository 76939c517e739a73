"""Pausing the cyclic garbage collector and putting it back as it was; freezing start-up."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from provisioner.reconcile.pipeline import collector_paused as gc_paused


@pytest.fixture(autouse=True)
def _gc_restored() -> Iterator[None]:
    enabled = gc.isenabled()
    yield
    if enabled:
        gc.enable()


def test_the_collector_is_off_inside_and_on_again_after() -> None:
    gc.enable()
    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_nested_pauses_resume_only_at_the_outermost_exit() -> None:
    gc.enable()
    with gc_paused():
        with gc_paused():
            pass
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_collector_already_off_stays_off() -> None:
    gc.disable()
    with gc_paused():
        pass
    assert not gc.isenabled()


def test_it_decorates_functions_too() -> None:
    gc.enable()

    @gc_paused()
    def build() -> bool:
        return gc.isenabled()

    assert build() is False
    assert gc.isenabled()


def test_the_cli_exempts_what_start_up_loaded_from_collection() -> None:
    from provisioner.cli import main

    gc.unfreeze()
    try:
        assert main(["schema"]) == 0
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
