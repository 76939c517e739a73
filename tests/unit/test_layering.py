"""The package layout is the architecture: each layer imports only the layers below it.

See docs/architecture.md. A new import that crosses a line fails here, not in a review.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "provisioner"

BASE = ("provisioner.errors", "provisioner.config", "provisioner.logs")  # logs imports none
MODEL = ("provisioner.reconcile.model",)
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
    "provisioner.manifest.durations": (),
    "provisioner.reconcile.model": ("provisioner.errors",),
    "provisioner.http": ("provisioner.errors",),
    "provisioner.sinks": (*BASE, *MODEL, "provisioner.http"),
    "provisioner.streamkap": (*BASE, *MODEL, "provisioner.http"),
    "provisioner.manifest": (*BASE, *MODEL, "provisioner.sinks"),
    # The stages meet only in the shared model; `plan` spells durations as manifests do.
    "provisioner.reconcile.resolve": (*BASE, *MODEL, "provisioner.manifest"),
    "provisioner.reconcile.observe": (*BASE, *MODEL, "provisioner.sinks", "provisioner.streamkap"),
    "provisioner.reconcile.plan": (*BASE, *MODEL, "provisioner.manifest.durations"),
    "provisioner.reconcile.engine": (
        *BASE,
        *MODEL,
        "provisioner.http",
        "provisioner.sinks",
        "provisioner.streamkap",
    ),
    "provisioner.reconcile": (
        *BASE,
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
    assert top == ["__init__.py", "__main__.py", "config.py", "errors.py", "logs.py"]
