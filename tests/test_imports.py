"""No import circle in the package: the graph of module imports (imports inside functions
included) has no cycle. A circle hidden by an import inside a function still ties two modules
into one; the layer table (``tests/test_layers.py``) cannot see a circle inside one layer."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(name: str, modules: set[str]) -> str | None:
    """The package module ``name`` refers to (its longest prefix that is one), if any."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def _targets(node: ast.AST, module: str, is_package: bool) -> list[str]:
    """Dotted names an import statement loads: ``from a import b`` loads ``a.b`` when ``b`` is
    a submodule, else ``a`` (the caller resolves which)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    assert isinstance(node, ast.ImportFrom)
    if node.level:  # relative: from the module's own package upwards
        base = module.split(".")
        base = base if is_package else base[:-1]
        base = base[: len(base) - (node.level - 1)]
        prefix = ".".join(base + ([node.module] if node.module else []))
    else:
        prefix = node.module or ""
    return [f"{prefix}.{alias.name}" for alias in node.names]


def import_graph() -> nx.DiGraph:
    """module -> the package modules it imports (anywhere in the file, ``TYPE_CHECKING``
    blocks left out: they never run)."""
    files = {_module_name(p): p for p in sorted((SRC / "humanlm").rglob("*.py"))}
    modules = set(files)
    graph = nx.DiGraph()
    graph.add_nodes_from(modules)
    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skipped = {
            id(inner)
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for inner in ast.walk(node)
        }
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom) or id(node) in skipped:
                continue
            for name in _targets(node, module, path.name == "__init__.py"):
                target = _resolve(name, modules)
                if target is not None and target != module:
                    graph.add_edge(module, target)
    return graph


def test_the_graph_sees_imports_inside_functions() -> None:
    graph = import_graph()
    # Both imports sit inside functions.
    assert graph.has_edge("humanlm.cli.simulate", "humanlm.simulate.user")
    assert graph.has_edge("humanlm.cli.main", "humanlm.cli.serve")


def _rotated(cycle: list[str]) -> list[str]:
    start = cycle.index(min(cycle))
    return cycle[start:] + cycle[:start]


def test_no_import_circle() -> None:
    graph = import_graph()
    circles = sorted(" -> ".join([*c, c[0]]) for c in map(_rotated, nx.simple_cycles(graph)))
    assert not circles, f"{len(circles)} import circle(s):\n" + "\n".join(circles[:40])
