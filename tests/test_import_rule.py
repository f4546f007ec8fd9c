"""The bundled plugins import ganforge the way a third party must (docs/plugins.md, "The contract"):
only its public API, never each other's insides.

Allowed to bundled code: names exported from ``ganforge`` (``ganforge.__all__``) and its public
modules (:data:`PUBLIC`); anything in its own plugin package; and the public (not underscored)
modules of an app it builds on (``ganforge_plugins.apps.<app>.<module>``). Not allowed: the
engine's internals (``ganforge.training.engine``, ``ganforge.cli``, ...) and another bundled
package's modules.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from conftest import REPO

import ganforge

# Documented in docs/plugins.md ("What plugins import"); the rest of ganforge/ is the engine's own.
PUBLIC = {
    "ganforge.api",
    "ganforge.checkpoint",
    "ganforge.data",
    "ganforge.errors",
    "ganforge.hookspecs",
    "ganforge.model",
    "ganforge.paths",
    "ganforge.plugins",
    "ganforge.protocols",
    "ganforge.recipe",
    "ganforge.registry",
    "ganforge.runtime",
    "ganforge.safety",
    "ganforge.training.trainer",
    "ganforge.translate",
}
PLUGINS = REPO / "plugins"


def _package(module: str) -> str:
    """The plugin package a ``ganforge_plugins`` module belongs to: ``networks``, ``apps.eval``."""
    parts = module.split(".")[1:]
    return ".".join(parts[:2]) if parts[:1] == ["apps"] else (parts[0] if parts else "")


def _imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, absolute module, names) of every import in a bundled module."""
    own = "ganforge_plugins." + ".".join(path.relative_to(PLUGINS).with_suffix("").parts)
    own = own.removesuffix(".__init__")
    package = own if path.name == "__init__.py" else own.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.append((node.lineno, base, [alias.name for alias in node.names]))
    return found


def _problem(importer: str, module: str, names: list[str]) -> str | None:
    if module == "ganforge":
        private = [n for n in names if n not in ganforge.__all__ and f"ganforge.{n}" not in PUBLIC]
        return f"ganforge.{', '.join(private)} is not public" if private else None
    if module.startswith("ganforge."):
        return None if module in PUBLIC else f"{module} is the engine's own, not public"
    if module == "ganforge_plugins" or module.startswith("ganforge_plugins."):
        if _package(module) == _package(importer):
            return None
        if module.startswith("ganforge_plugins.apps.") and not module.rsplit(".", 1)[-1].startswith("_"):
            return None  # an app's public module: apps build on each other
        return f"{module} belongs to another bundled package"
    return None


def bundled_modules() -> list[Path]:
    return sorted(p for p in PLUGINS.rglob("*.py") if "__pycache__" not in p.parts)


@pytest.mark.parametrize("path", bundled_modules(), ids=lambda p: str(p.relative_to(PLUGINS)))
def test_bundled_code_imports_only_the_public_api(path):
    importer = "ganforge_plugins." + ".".join(path.relative_to(PLUGINS).with_suffix("").parts)
    problems = [
        f"line {line}: {problem}"
        for line, module, names in _imports(path)
        if (problem := _problem(importer, module, names))
    ]
    assert not problems, "; ".join(problems)


def test_the_rule_catches_what_it_forbids():
    assert _problem("ganforge_plugins.objectives.cut", "ganforge_plugins.losses.adversarial", []) is not None
    assert _problem("ganforge_plugins.objectives.cut", "ganforge.training.engine", []) is not None
    assert _problem("ganforge_plugins.networks.resnet", "ganforge", ["Objective", "_LAZY"]) is not None
    assert (
        _problem("ganforge_plugins.apps.demo.demo", "ganforge_plugins.apps.composite.composite", []) is None
    )
    assert (
        _problem("ganforge_plugins.apps.demo.demo", "ganforge_plugins.apps.eval._fid_blocks", []) is not None
    )
    assert _problem("ganforge_plugins.networks.unet", "ganforge_plugins.networks.resnet", []) is None


def test_the_engine_has_no_import_cycle_and_imports_no_plugin():
    """ganforge/ imports no bundled plugin module, and its modules form no import cycle."""
    engine = REPO / "ganforge"
    graph: dict[str, set[str]] = {}
    for path in engine.rglob("*.py"):
        name = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                deps.add(node.module)
                deps.update(f"{node.module}.{a.name}" for a in node.names)
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names)
        assert not any(d.startswith("ganforge_plugins") for d in deps), f"{name} imports a bundled plugin"
        graph[name] = {d for d in deps if d.startswith("ganforge.")} - {name}
    modules = set(graph)
    # module-level imports only matter for cycles; a cycle through function-level imports is fine,
    # so the check walks only the imports at the top of each module
    top: dict[str, set[str]] = {}
    for path in engine.rglob("*.py"):
        name = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        deps = set()
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                deps.update(
                    m for m in (node.module, *(f"{node.module}.{a.name}" for a in node.names)) if m in modules
                )
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names if a.name in modules)
        top[name] = deps - {name}
    seen: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        seen[node] = 1
        for dep in top.get(node, ()):
            if seen.get(dep) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*stack[stack.index(dep) :], dep]))
            if dep not in seen:
                visit(dep, [*stack, dep])
        seen[node] = 2

    for module in sorted(top):
        if module not in seen:
            visit(module, [module])
