"""The layer rule of docs/architecture.md, read from the source: core <- pipelines <- review.

Every import counts, at module level or inside a function (a lazy import is still a dependency).
"""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("core", "pipelines", "review")
# Which layers each one may import (besides itself): the bottom imports none of them.
ALLOWED = {"core": set(), "pipelines": {"core"}, "review": {"core", "pipelines"}}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))}


def _imported_names(path: Path, module: str) -> set[str]:
    """Dotted names this module imports (relative imports resolved)."""
    is_package = path.name == "__init__.py"
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module
            names.add(prefix)
            names.update(f"{prefix}.{alias.name}" for alias in node.names)
    return names


def _graph() -> dict[str, set[str]]:
    """module -> the product modules it imports (a `from package import name` edge goes to the
    module `package.name` when there is one, else to the package)."""
    modules = _modules()
    graph = {}
    for module, path in modules.items():
        targets = set()
        for name in _imported_names(path, module):
            if name in modules and name != module:
                targets.add(name)
        # `from a.b import c` adds both "a.b" and "a.b.c": keep the package only when nothing under it matched.
        graph[module] = {t for t in targets if not any(o.startswith(t + ".") for o in targets)}
    return graph


def test_the_graph_sees_imports_at_every_level():
    graph = _graph()
    assert "core.errors" in graph["pipelines.models"] | {t for m, ts in graph.items() if m.startswith("pipelines") for t in ts}
    assert any(t.startswith("pipelines") for m, ts in graph.items() if m.startswith("review") for t in ts)


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_point_down_the_layers(package):
    wrong = sorted(
        f"{module} imports {target}"
        for module, targets in _graph().items() if module.split(".")[0] == package
        for target in targets
        if target.split(".")[0] != package and target.split(".")[0] not in ALLOWED[package]
    )
    assert wrong == []


def test_no_import_cycles():
    graph = _graph()
    cycles, state, stack = [], {}, []

    def visit(module):
        state[module] = "open"
        stack.append(module)
        for target in sorted(graph.get(module, ())):
            if state.get(target) == "open":
                cycles.append(" -> ".join(stack[stack.index(target):] + [target]))
            elif target not in state:
                visit(target)
        stack.pop()
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module)
    assert cycles == []
