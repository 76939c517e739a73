"""docs/architecture.md names every module of the package, so it cannot drift from the code."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "provisioner"
DOC = ROOT / "docs" / "architecture.md"
NAME = re.compile(r"^(?:[\w]+\.py|[\w]+/)$")


def tree_block(text: str) -> list[str]:
    """The lines of the fenced block under '## The tree'."""
    section = text.split("## The tree", 1)[1]
    return section.split("```", 2)[1].splitlines()[1:]


def named_paths(lines: list[str]) -> set[str]:
    """Paths the tree names, relative to the package: `cli/apply.py`, `sinks/vault/sink.py`."""
    named: set[str] = set()
    folders: list[tuple[int, str]] = []  # (indent, name) of the folders the line sits in
    for line in lines:
        indent = len(line) - len(line.lstrip())
        names = []
        for token in line.split():
            if not NAME.match(token):
                break  # the description starts
            names.append(token)
        if not names:
            continue
        folders = [(i, n) for i, n in folders if i < indent]
        prefix = "/".join(n.rstrip("/") for _, n in folders[1:])  # below `provisioner/`
        for name in names:
            if name.endswith("/"):
                folders.append((indent, name))
            else:
                named.add(f"{prefix}/{name}" if prefix else name)
    return named


def has_code(path: Path) -> bool:
    """Whether a module defines anything (a package's bare re-exports need no line of their own)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    return any(isinstance(node, kinds) for node in tree.body)


def modules() -> set[str]:
    found = set()
    for path in PACKAGE.rglob("*.py"):
        if path.name == "__init__.py" and not has_code(path):
            continue
        found.add(path.relative_to(PACKAGE).as_posix())
    return found


def test_every_module_is_named_in_the_architecture_doc() -> None:
    missing = sorted(modules() - named_paths(tree_block(DOC.read_text(encoding="utf-8"))))
    assert not missing, f"docs/architecture.md does not name: {missing}"


def test_the_doc_names_no_module_that_does_not_exist() -> None:
    named = named_paths(tree_block(DOC.read_text(encoding="utf-8")))
    ghosts = sorted(name for name in named if not (PACKAGE / name).is_file())
    assert not ghosts, f"docs/architecture.md names modules that do not exist: {ghosts}"


def test_the_tree_reader_follows_folders_by_indentation() -> None:
    lines = [
        "provisioner/",
        "  a.py   b.py      top-level modules",
        "  sinks/        where secrets go",
        "    base.py       the protocol, with a.py mentioned in prose",
        "    vault/        a sub-package",
        "      sink.py       its sink",
        "    env.py        back one level",
        "  cli/          the command line",
        "    main.py       the entry",
        "tests/",
        "  unit/         fast",
    ]
    assert named_paths(lines) == {
        "a.py",
        "b.py",
        "sinks/base.py",
        "sinks/vault/sink.py",
        "sinks/env.py",
        "cli/main.py",
    }
