"""The sink registry: a plugin that cannot be imported breaks only the runs that use it."""

from __future__ import annotations

from importlib.metadata import EntryPoint

import pytest

from provisioner import sinks


def test_a_broken_plugin_is_set_aside_and_named_when_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    good = EntryPoint("file", "provisioner.sinks.file:FileSink", sinks.ENTRY_POINT_GROUP)
    broken = EntryPoint("broken", "no_such_module_xyz:Sink", sinks.ENTRY_POINT_GROUP)
    monkeypatch.setattr(sinks, "entry_points", lambda group: [good, broken])
    monkeypatch.setattr(sinks, "_broken", {})
    sinks.sink_types.cache_clear()
    try:
        assert set(sinks.sink_types()) == {"file"}
        with pytest.raises(KeyError, match=r"'broken' cannot be loaded .*no_such_module_xyz"):
            sinks.sink_type("broken")
    finally:
        sinks.sink_types.cache_clear()
