"""Imports go downwards: every module of the package imports only its own layer or the ones below,
as the README's layer table says (lazy imports inside functions count too)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "humanlm"


def _layers() -> dict[str, int]:
    """Package name -> depth (0 for the bottom line of the README's table)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("Layers (imports go downwards only")[1].split("\n\n")[1]
    rows = [line for line in table.splitlines() if line.startswith("| ")][1:]
    depth = {}
    for level, row in enumerate(reversed(rows)):
        packages = re.sub(r"\([^)]*\)", "", row.split("|")[2]).split(":")[0]
        for name in re.findall(r"`(\w+)`", packages):
            depth[name] = level
    return depth


def _imported(path: Path) -> list[tuple[int, str]]:
    """(line, top-level humanlm package) of every absolute import in a file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "humanlm" and len(parts) > 1:
                found.append((node.lineno, parts[1]))
    return found


def test_the_table_names_the_llm_users_above_the_layers_they_stand_on() -> None:
    depth = _layers()
    for user in ("judge", "simulate", "enrich"):
        assert depth[user] > max(depth[low] for low in ("llm", "data", "states", "files"))


def test_no_module_imports_a_layer_above_its_own() -> None:
    depth = _layers()
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        own = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        if own not in depth:
            continue
        for line, target in _imported(path):
            if depth.get(target, -1) > depth[own]:
                upward.append(f"{path.relative_to(ROOT)}:{line}: {own} imports {target}")
    assert not upward, "\n".join(upward)


def test_the_table_names_every_package() -> None:
    # Private helpers (_lazy) and the test kit (testing: scripted servers, used by tests and by
    # nothing in the product) stand outside the layers.
    outside = {"_lazy", "testing", "__init__"}
    names = {p.stem for p in PACKAGE.glob("*.py")} | {
        p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()
    }
    assert sorted(names - outside - set(_layers())) == []
