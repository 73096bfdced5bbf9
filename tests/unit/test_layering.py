"""Leaves stay leaves, and no module imports itself back through a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import collectbus

SRC = Path(collectbus.__file__).parent
LEAVES = {
    "collectbus.records",
    "collectbus.errors",
    "collectbus.clock",
    "collectbus.procfields",
    "collectbus.values",
}
# Only these wire the layers together (STYLE.md).
WIRING = ("collectbus.cli", "collectbus.daemon", "collectbus.serve", "collectbus.__main__")


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in SRC.rglob("*.py"):
        name = _module_name(path)
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.ImportFrom)
                and node.module
                and node.module.startswith("collectbus")
            ):
                deps.add(node.module)
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names if a.name.startswith("collectbus"))
        graph[name] = deps
    return graph


def test_leaves_import_nothing_of_collectbus() -> None:
    graph = _imports()
    for leaf in LEAVES:
        assert graph[leaf] <= {"collectbus.procfields"} or leaf == "collectbus.records", graph[leaf]
        assert not (graph[leaf] - LEAVES), f"{leaf} imports {graph[leaf] - LEAVES}"


def test_only_wiring_modules_import_the_cli_or_daemon() -> None:
    for name, deps in _imports().items():
        if name.startswith(WIRING):
            continue
        wrong = {d for d in deps if d.startswith(("collectbus.cli", "collectbus.daemon"))}
        assert not wrong, f"{name} imports {wrong}"


def test_pandas_only_in_analysis() -> None:
    for path in SRC.rglob("*.py"):
        name = _module_name(path)
        if name.startswith("collectbus.analysis") or name.startswith("collectbus.cli"):
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                assert all(a.name != "pandas" for a in node.names), name
            if isinstance(node, ast.ImportFrom):
                assert node.module != "pandas", name


def test_no_import_cycles() -> None:
    graph = _imports()

    def resolve(dep: str) -> str | None:
        while dep and dep not in graph:
            dep = dep.rpartition(".")[0]
        return dep or None

    edges = {n: {r for d in deps if (r := resolve(d)) and r != n} for n, deps in graph.items()}
    # Package __init__ modules that only re-export are part of their package; a
    # cycle through them is still a cycle.
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                cycle = [*stack[stack.index(nxt) :], nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
