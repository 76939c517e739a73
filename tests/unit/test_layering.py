"""The package layout is the architecture: each layer imports only the layers below it.

See docs/architecture.md. A new import that crosses a line fails here, not in a review.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "provisioner"

# logs imports none; fs (crash-safe files) serves the sinks and the CLI's report alike.
BASE = ("provisioner.errors", "provisioner.config", "provisioner.logs", "provisioner.fs")
MODEL = ("provisioner.model", "provisioner.runtime", "provisioner.kafka_usernames")
STAGES = (
    "provisioner.reconcile.resolve",
    "provisioner.reconcile.observe",
    "provisioner.reconcile.plan",
    "provisioner.reconcile.engine",
)
# Module prefix -> what it may import of the provisioner (prefixes); its own package is allowed.
RULES: dict[str, tuple[str, ...]] = {
    "provisioner": (),  # the package itself, and any module no rule below names
    "provisioner.errors": ("provisioner.logs",),  # messages are redacted by value
    "provisioner.config": (),
    "provisioner.logs": (),
    "provisioner.fs": ("provisioner.errors", "provisioner.logs"),
    "provisioner.manifest.durations": (),
    "provisioner.model": ("provisioner.errors",),
    "provisioner.kafka_usernames": ("provisioner.logs", "provisioner.model"),
    "provisioner.runtime": ("provisioner.errors", "provisioner.model"),
    "provisioner.http": ("provisioner.errors", "provisioner.runtime"),
    "provisioner.sinks": (*BASE, *MODEL, "provisioner.http"),
    "provisioner.streamkap": (*BASE, *MODEL, "provisioner.http"),
    "provisioner.manifest": (*BASE, *MODEL, "provisioner.sinks"),
    # The stages meet only in the shared model; `plan` spells durations as manifests do.
    "provisioner.reconcile.resolve": (*BASE, *MODEL, "provisioner.manifest"),
    "provisioner.reconcile.observe": (*BASE, *MODEL, "provisioner.sinks", "provisioner.streamkap"),
    "provisioner.reconcile.plan": (
        *BASE,
        *MODEL,
        "provisioner.manifest.durations",
        "provisioner.reconcile.drifts",  # its rules of what differs: pure, like plan itself
    ),
    "provisioner.reconcile.drifts": (*BASE, *MODEL),
    "provisioner.reconcile.engine": (
        *BASE,
        *MODEL,
        "provisioner.http",
        "provisioner.sinks",
        "provisioner.streamkap",
    ),
    "provisioner.reconcile": (
        *BASE,
        *MODEL,
        "provisioner.http",
        "provisioner.manifest",
        "provisioner.sinks",
        "provisioner.streamkap",
        "provisioner.simulator",  # only `session`, lazily, and only for --simulate
    ),
    "provisioner.cli": ("provisioner",),
    "provisioner.simulator": (),  # a fake of the outside world: it knows nothing of the tool
    "provisioner.__main__": ("provisioner.cli",),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.split(".")[0] == "provisioner"}


def rule_for(module: str) -> tuple[str, tuple[str, ...]]:
    """The most specific rule whose prefix names the module."""
    matches = [prefix for prefix in RULES if module == prefix or module.startswith(prefix + ".")]
    prefix = max(matches, key=len)
    return prefix, RULES[prefix]


def is_module(name: str) -> bool:
    """Whether `name` (perhaps `package.module.Name`) names a module of the provisioner."""
    relative = Path(*name.split("."))
    parent = PACKAGE.parent
    return (parent / relative).with_suffix(".py").is_file() or (parent / relative).is_dir()


def allowed(imported: str, own: str, permitted: tuple[str, ...]) -> bool:
    if not is_module(imported):
        return True  # `from package import Name`: the package itself was checked
    prefixes = (own, *permitted)
    return any(imported == p or imported.startswith(p + ".") for p in prefixes)


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda path: module_name(path))
def test_each_module_imports_only_the_layers_below_it(path: Path) -> None:
    module = module_name(path)
    own, permitted = rule_for(module)
    if module in STAGES:
        own = module  # a stage may not import another stage: they meet in the model
    crossing = sorted(
        name for name in imports_of(path) if not allowed(name, own, permitted) and name != module
    )
    assert not crossing, f"{module} may not import {crossing}"


def test_the_top_level_holds_only_cross_cutting_modules() -> None:
    top = sorted(path.name for path in PACKAGE.glob("*.py"))
    # kafka_usernames.py is model.py's neighbour: a naming rule two stages share (the planner
    # sees a changed username as drift, the API adapter derives new ones), as the marker is.
    assert top == [
        "__init__.py",
        "__main__.py",
        "config.py",
        "errors.py",
        "kafka_usernames.py",
        "logs.py",
        "model.py",
    ]


def unit_of(module: str) -> str:
    """The part of the tree a module belongs to: a subpackage, or a top-level module."""
    parts = module.split(".")
    return ".".join(parts[:2])


def package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in MODULES:
        unit = unit_of(module_name(path))
        for imported in imports_of(path):
            target = unit_of(imported)
            if target != unit and target != "provisioner" and is_module(target):
                graph.setdefault(unit, set()).add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One cycle of the graph as a path that ends where it starts, or [] when there is none."""
    state: dict[str, str] = {}
    trail: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = "open"
        trail.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return [*trail[trail.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = "done"
        trail.pop()
        return []

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return []


def test_no_two_parts_of_the_package_import_each_other_in_a_cycle() -> None:
    cycle = find_cycle(package_graph())
    assert not cycle, " -> ".join(cycle)


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) == []


def test_the_stages_below_reconcile_import_nothing_of_it() -> None:
    graph = package_graph()
    for unit in ("provisioner.sinks", "provisioner.streamkap", "provisioner.manifest"):
        assert "provisioner.reconcile" not in graph.get(unit, set()), unit
