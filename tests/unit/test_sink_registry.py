"""The sink registry: built-in types from a table, plugins by entry point, each loaded when named;
a plugin that cannot be imported breaks only the runs that use it."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib

import pytest

from provisioner import sinks
from provisioner.sinks.file import FileSink
from tests.support.served import REPO


@pytest.fixture
def fresh_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sinks, "_types", {})
    monkeypatch.setattr(sinks, "_broken", {})


@pytest.mark.usefixtures("fresh_registry")
def test_a_broken_plugin_is_set_aside_and_named_when_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sinks, "_plugins", lambda: {"broken": "no_such_module_xyz:Sink"})
    types = sinks.sink_types()
    assert "broken" not in types
    assert types["file"] is FileSink
    with pytest.raises(KeyError, match=r"'broken' cannot be loaded .*no_such_module_xyz"):
        sinks.sink_type("broken")


@pytest.mark.usefixtures("fresh_registry")
def test_an_unknown_type_names_the_installed_ones_without_loading_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sinks, "_plugins", lambda: {"jsonfile": "no_such_module_xyz:Sink"})
    with pytest.raises(KeyError, match=r"unknown sink type 'nope' \(installed: aws-secretsmanager"):
        sinks.sink_type("nope")
    assert sinks._types == {}  # naming them loaded none


@pytest.mark.usefixtures("fresh_registry")
def test_a_plugin_cannot_shadow_a_built_in_type(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sinks, "_plugins", lambda: {"file": "no_such_module_xyz:Sink"})
    assert sinks.sink_type("file") is FileSink


def test_the_distribution_registers_no_built_in_type_twice() -> None:
    """The built-ins live in one table; entry points are for third-party plugins."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert sinks.ENTRY_POINT_GROUP not in project.get("entry-points", {})


def test_naming_one_sink_type_imports_that_plugin_only() -> None:
    code = (
        "import json, sys\n"
        "from provisioner import sinks\n"
        "sinks.sink_type('env')\n"
        "loaded = [m for m in sys.modules if m.startswith('provisioner.sinks.')]\n"
        "print(json.dumps({'loaded': loaded, 'scanned': sinks._plugins.cache_info().currsize}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    found = json.loads(done.stdout)
    plugins = {name.split(".")[2] for name in found["loaded"]}
    assert "env" in plugins
    assert not plugins & {"file", "vault", "aws", "kubernetes"}
    assert found["scanned"] == 0  # no entry point read for a built-in type
