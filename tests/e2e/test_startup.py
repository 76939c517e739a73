"""Issue 23: start-up imports only what the command uses, read from `python -X importtime`.

`--version`, `--help`, `schema` and `validate` import no HTTP client, no metrics, no
pydantic-settings; `validate` loads the sink plugins its manifests name and no other (a remote
store's plugin brings its HTTP client). structlog imports rich for its console tracebacks: rich
is allowed there and only there.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.manifests import one_credential
from tests.support.served import REPO

#: What none of these commands may import, whoever imports it.
NETWORK = ("aiohttp", "httpx", "httpcore", "prometheus_client", "pydantic_settings")
#: The sink plugins, each allowed only when a manifest names it.
PLUGINS = {
    "file": "provisioner.sinks.file",
    "env": "provisioner.sinks.env",
    "vault": "provisioner.sinks.vault",
    "aws-secretsmanager": "provisioner.sinks.aws",
    "kubernetes": "provisioner.sinks.kubernetes",
}
#: The sinks that write local files: validating their options needs no network module.
LOCAL = ("file", "env")
#: What only a sink that writes may bring (the file sink's worker threads go through anyio).
RUN_TIME = (
    "anyio",
    "tenacity",
    "provisioner.runtime",
    "provisioner.http",
    "provisioner.reconcile.session",
)


#: `python -m provisioner`, writing the modules it holds at exit to $MODULES_FILE: `importlib.
#: import_module` (the sink registry's) is not reported by `-X importtime`; `sys.modules` has all.
RUN = (
    "import atexit, json, os, runpy, sys\n"
    "def held():\n"
    "    with open(os.environ['MODULES_FILE'], 'w') as out:\n"
    "        json.dump(sorted(sys.modules), out)\n"
    "atexit.register(held)\n"
    "sys.argv[0] = 'provisioner'\n"
    "runpy.run_module('provisioner', run_name='__main__')\n"
)


@dataclass(frozen=True)
class Imported:
    """A module the process imported, and the modules whose import imported it (as far as
    `-X importtime` tells)."""

    name: str
    by: tuple[str, ...]


def imports_of(*args: str, cwd: Path) -> list[Imported]:
    """Every module `python -m provisioner ARGS` imports, with the chain that imported it."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PROVISIONER_")}
    env.update(PYTHONPATH=str(REPO), MODULES_FILE=str(cwd / "modules.json"))
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", RUN, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    chains = {item.name: item for item in parse_importtime(done.stderr)}
    held = json.loads((cwd / "modules.json").read_text())
    return [chains.get(name, Imported(name, ())) for name in held]


def parse_importtime(stderr: str) -> list[Imported]:
    """`import time: SELF | CUMULATIVE | <indent>NAME` lines; a module is printed after those it
    imported, one level of indentation deeper (two spaces)."""
    rows = []
    for line in stderr.splitlines():
        if line.startswith("import time:") and "|" in line and "cumulative" not in line:
            name = line.rsplit("|", 1)[1]
            rows.append(((len(name) - len(name.lstrip())) // 2, name.strip()))
    found = []
    for index, (depth, name) in enumerate(rows):
        by, level = [], depth
        for later_depth, later in rows[index + 1 :]:
            if later_depth < level:
                by.append(later)
                level = later_depth
        found.append(Imported(name, tuple(by)))
    return found


def forbidden(imported: list[Imported], names: tuple[str, ...]) -> list[str]:
    """The modules of `imported` that are, or are inside, one of `names`."""
    return sorted(
        {m.name for m in imported if any(m.name == n or m.name.startswith(n + ".") for n in names)}
    )


def rich_outside_structlog(imported: list[Imported]) -> list[str]:
    """rich's modules that structlog did not import (for its console tracebacks)."""
    return sorted(
        {
            m.name
            for m in imported
            if m.name.split(".")[0] == "rich" and not any(b.startswith("structlog") for b in m.by)
        }
    )


def test_the_parser_follows_the_chain_of_importers() -> None:
    stderr = (
        "import time: self [us] | cumulative | imported package\n"
        "import time:       1 |          1 |     rich.text\n"
        "import time:       1 |          2 |   structlog.dev\n"
        "import time:       1 |          1 |   rich\n"
        "import time:       1 |          4 | structlog\n"
    )
    (text, dev, rich, structlog) = parse_importtime(stderr)
    assert text == Imported("rich.text", ("structlog.dev", "structlog"))
    assert rich == Imported("rich", ("structlog",))
    assert rich_outside_structlog([text, dev, rich, structlog]) == []
    assert rich_outside_structlog([Imported("rich", ("provisioner.cli.progress",))]) == ["rich"]


@pytest.mark.parametrize("args", [("--version",), ("--help",), ("validate", "--help"), ("schema",)])
def test_commands_that_read_no_manifest_import_nothing_of_the_network_or_the_sinks(
    args: tuple[str, ...], tmp_path: Path
) -> None:
    imported = imports_of(*args, cwd=tmp_path)
    assert forbidden(imported, (*NETWORK, *PLUGINS.values(), *RUN_TIME)) == []
    assert rich_outside_structlog(imported) == []


def test_version_imports_no_command_and_no_pydantic(tmp_path: Path) -> None:
    imported = imports_of("--version", cwd=tmp_path)
    loaded = forbidden(imported, ("pydantic", "yaml", "structlog", "provisioner.cli.validate"))
    assert loaded == []


@pytest.mark.parametrize("sink", sorted(PLUGINS))
def test_validate_loads_the_sink_plugin_a_manifest_names_and_no_other(
    sink: str, tmp_path: Path
) -> None:
    options = {
        "file": "path: ./secrets",
        "env": "path: ./.env",
        "vault": "address: https://vault.example:8200, mount: secret",
        "aws-secretsmanager": "region: eu-west-1",
        "kubernetes": "namespace: apps",
    }[sink]
    manifest = one_credential().replace(
        "{type: file, path: ./secrets}", f"{{type: {sink}, {options}}}"
    )
    (tmp_path / "m.yaml").write_text(manifest)
    imported = imports_of("validate", "m.yaml", cwd=tmp_path)
    others = tuple(module for name, module in PLUGINS.items() if name != sink)
    assert forbidden(imported, others) == []
    assert forbidden(imported, (PLUGINS[sink],)) != []  # its options model was read
    if sink in LOCAL:  # a remote store's sink brings its HTTP client (and httpx brings rich)
        assert forbidden(imported, NETWORK) == []
        assert rich_outside_structlog(imported) == []


def test_validate_of_a_manifest_without_sinks_imports_no_sink_and_no_event_loop_library(
    tmp_path: Path,
) -> None:
    (tmp_path / "m.yaml").write_text("version: 1\nservices: []\n")
    imported = imports_of("validate", "m.yaml", cwd=tmp_path)
    assert forbidden(imported, (*NETWORK, *PLUGINS.values(), *RUN_TIME)) == []
