"""The package's import graph: no cycle, and no import inside a function that dodges one."""

from __future__ import annotations

import ast
from pathlib import Path

from helpers import ROOT

PACKAGE = ROOT / "kaggle_digits"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(node: ast.AST, current: str, is_package: bool) -> list[str]:
    """The kaggle_digits modules an import statement names."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name.startswith("kaggle_digits")]
    if isinstance(node, ast.ImportFrom):
        if node.level:
            base = current.split(".")
            base = base[:len(base) - node.level + (1 if is_package else 0)]
            module = ".".join(base + ([node.module] if node.module else []))
        else:
            module = node.module or ""
        if not module.startswith("kaggle_digits"):
            return []
        names = [f"{module}.{alias.name}" for alias in node.names]
        return [module, *names]
    return []


def import_graph():
    """Module-level and function-level edges between the package's modules."""
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    top, inner = {name: set() for name in modules}, {name: set() for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        is_package = path.name == "__init__.py"
        top_level = set(map(id, tree.body))
        for node in ast.walk(tree):
            targets = {t for t in imported(node, name, is_package) if t in modules} - {name}
            (top if id(node) in top_level else inner)[name] |= targets
    return top, inner


def reachable(graph: dict, start: str) -> set[str]:
    seen, stack = set(), [start]
    while stack:
        for nxt in graph[stack.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen


def test_module_level_imports_have_no_cycle():
    top, _ = import_graph()
    cycles = sorted(name for name in top if name in reachable(top, name))
    assert cycles == [], f"import cycles through: {cycles}"


def test_no_import_inside_a_function_dodges_a_cycle():
    top, inner = import_graph()
    dodges = sorted(f"{name} -> {target}" for name, targets in inner.items()
                    for target in targets if name in reachable(top, target))
    assert dodges == [], f"imports inside functions that would close a cycle: {dodges}"
