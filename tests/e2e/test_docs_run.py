"""Docs that run: every ```console block of README.md and docs/*.md, as written.

A block without a marker runs against the simulator (served by its own `provisioner simulate`
or in-process with `--simulate`) in a copy of manifests/, with `provisioner` of this venv on PATH:
every command must exit as the block says (0 unless its comment says `exit N`), and every line
the block shows must appear in that command's output, in order (client ids and times aside).
A block marked `<!-- docs-test: KIND -->` (tests/support/doc_blocks.py: MARKERS) cannot run here
and is checked for syntax: `bash -n`, and its `provisioner` commands parse with the CLI's parser.
"""

from __future__ import annotations

import contextlib
import io
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from provisioner.cli.main import build_parser
from provisioner.sinks import BUILT_IN
from tests.support.doc_blocks import MARKERS, ConsoleBlock, console_blocks, provisioner_argv
from tests.support.doc_run import (
    docs_env,
    missing_lines,
    provisioner_on_path,
    run_block,
)
from tests.support.served import REPO

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
BLOCKS = [block for path in DOCS for block in console_blocks(path)]
RUNNABLE = [block for block in BLOCKS if block.marker is None]
MARKED = [block for block in BLOCKS if block.marker is not None]


def _name(block: ConsoleBlock) -> str:
    return block.name


def test_the_docs_have_blocks_that_run() -> None:
    # The README's `provisioner simulate` walkthrough, and docs/sinks.md's Vault and Kubernetes.
    runnable = {block.path.name for block in RUNNABLE}
    assert {"README.md", "sinks.md"} <= runnable
    assert len(RUNNABLE) >= 3


@pytest.mark.parametrize("block", BLOCKS, ids=_name)
def test_a_block_is_commands_with_a_known_marker(block: ConsoleBlock) -> None:
    assert block.commands, f"{block.name}: no `$ ` prompt in a console block"
    assert block.marker is None or block.marker in MARKERS, (
        f"{block.name}: unknown marker {block.marker!r}; known: {sorted(MARKERS)}"
    )


@pytest.mark.parametrize("block", BLOCKS, ids=_name)
def test_a_block_is_valid_shell_and_its_flags_exist(block: ConsoleBlock) -> None:
    checked = subprocess.run(
        ["bash", "-n"], input=block.script, capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, f"{block.name}: {checked.stderr}"
    for command in block.commands:
        for argv in provisioner_argv(command):
            errors = io.StringIO()
            with contextlib.redirect_stderr(errors), contextlib.suppress(SystemExit):
                build_parser().parse_args(argv)
            shown = f"provisioner {' '.join(argv)}"
            assert not errors.getvalue(), f"{block.name}: `{shown}`: {errors.getvalue()}"


@pytest.mark.parametrize("block", RUNNABLE, ids=_name)
def test_a_block_runs_as_written(block: ConsoleBlock, tmp_path: Path) -> None:
    work = tmp_path / "work"
    shutil.copytree(REPO / "manifests", work / "manifests")
    # The checkout's venv, for `. .venv/bin/activate`: the one running these tests.
    assert (Path(sys.prefix) / "bin" / "activate").exists(), "the tests run outside a venv"
    (work / ".venv").symlink_to(sys.prefix)
    (tmp_path / "home").mkdir()
    env = docs_env(tmp_path / "home", REPO)
    assert provisioner_on_path(env), "the venv running the tests has no `provisioner` script"
    assert shutil.which("curl", path=env["PATH"]), "the documented blocks use curl"

    run = run_block(block, work, env)

    failed = run.first_failure()
    assert failed is None, (
        f"{block.name}: `{failed.command.text}` exited {failed.exit_code}"
        f" (expected {failed.command.expected_exit}):\n{failed.output}\n{run.log}"
    )
    for step in run.steps:
        missing = missing_lines(step.command.output, step.output)
        assert not missing, (
            f"{block.name}: `{step.command.text}` did not print {missing}; it printed:\n"
            f"{step.output}"
        )


def test_the_readme_sink_table_lists_every_built_in_sink_type() -> None:
    readme = (REPO / "README.md").read_text()
    table = readme.split("## Sinks", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `([\w-]+)` \|", table, flags=re.MULTILINE))
    built_in: dict[str, set[str]] = {}  # the class, and the names it is registered under
    for name, target in BUILT_IN.items():  # the registry's own table of built-in types
        built_in.setdefault(target, set()).add(name)
    assert len(built_in) == 5
    for target, names in built_in.items():
        assert names & listed, f"the README's sink table has no row for {target} ({names})"
    assert "(docs/sinks.md)" in table
