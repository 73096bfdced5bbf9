"""The layers of collectbus, as rules on who imports whom
(docs/architecture.md, "Import rules").

Every module of the package is parsed once (the ``imports`` fixture); each
rule below is one test naming the modules that break it. An import counts
wherever it is written: at the top of a module, inside a function (imported
when it runs) or under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

import pytest

import collectbus

SRC = Path(collectbus.__file__).parent
LEAVES = {
    "collectbus.records",
    "collectbus.states",
    "collectbus.errors",
    "collectbus.clock",
    "collectbus.procfields",
    "collectbus.values",
    "collectbus.timefmt",
    "collectbus.pendingids",
}
# Only these wire the layers together (docs/architecture.md, "Import rules").
WIRING = ("collectbus.cli", "collectbus.daemon", "collectbus.serve", "collectbus.__main__")

Imports = dict[str, set[str]]


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


@pytest.fixture(scope="module")
def imports() -> Imports:
    """Every module of collectbus and the modules it imports (any package), parsed once."""
    graph: Imports = {}
    for path in SRC.rglob("*.py"):
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                deps.add(node.module)
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names)
        graph[_module_name(path)] = deps
    return graph


@pytest.fixture(scope="module")
def graph(imports: Imports) -> Imports:
    """The imports of collectbus's own modules only."""
    return {name: {d for d in deps if _under(d, "collectbus")} for name, deps in imports.items()}


def _under(module: str, *packages: str) -> bool:
    """Whether ``module`` is one of ``packages`` or inside one."""
    return any(module == p or module.startswith(p + ".") for p in packages)


def _offenders(
    graph: Imports, importers: Iterable[str], forbidden: Iterable[str], *, but: Iterable[str] = ()
) -> list[str]:
    """``importer -> imported`` for each module under ``importers`` (and not
    under ``but``) that imports one under ``forbidden``."""
    importers, forbidden, but = tuple(importers), tuple(forbidden), tuple(but)
    return sorted(
        f"{name} -> {dep}"
        for name, deps in graph.items()
        if _under(name, *importers) and not _under(name, *but)
        for dep in deps
        if _under(dep, *forbidden)
    )


def test_the_tree_is_parsed(graph: Imports) -> None:
    # The rules below pass on an empty graph: check it holds the modules they name.
    for name in (
        "collectbus.serve.http.app",
        "collectbus.pipeline",
        "collectbus.store",
        "collectbus.jobtrack.tracker",
        "collectbus.collectors.host.collector",
        "collectbus.cli.entry",
        "collectbus.__main__",
    ):
        assert name in graph, name
    assert "collectbus.pipeline" in graph["collectbus.daemon"]


def test_leaves_import_nothing_of_collectbus(graph: Imports) -> None:
    for leaf in LEAVES:
        assert graph[leaf] <= {"collectbus.procfields"} or leaf == "collectbus.records", graph[leaf]
        assert not (graph[leaf] - LEAVES), f"{leaf} imports {graph[leaf] - LEAVES}"


def test_the_counters_and_the_aggregates_share_one_watermark(graph: Imports) -> None:
    """What a read of new rows covers is decided in ``pendingids`` alone (a
    leaf, so serve and aggregate import it without importing each other)."""
    for user in ("collectbus.serve.counting.tally", "collectbus.aggregate.delta"):
        assert "collectbus.pendingids" in graph[user], user
    assert not _offenders(graph, ["collectbus.serve"], ["collectbus.aggregate.delta"])


def test_only_wiring_modules_import_the_cli_or_daemon(graph: Imports) -> None:
    forbidden = ["collectbus.cli", "collectbus.daemon"]
    assert not _offenders(graph, ["collectbus"], forbidden, but=WIRING)


def test_nothing_but_the_entry_points_imports_the_cli(graph: Imports) -> None:
    # collectbus.cli.entry (the console script) is inside the CLI itself.
    entry_points = ["collectbus.cli", "collectbus.__main__"]
    assert not _offenders(graph, ["collectbus"], ["collectbus.cli"], but=entry_points)
    assert "collectbus.cli.entry" in graph["collectbus.__main__"]


def test_serve_imports_neither_the_cli_nor_the_daemon(graph: Imports) -> None:
    assert not _offenders(graph, ["collectbus.serve"], ["collectbus.cli", "collectbus.daemon"])


def test_the_pipeline_imports_no_front_end(graph: Imports) -> None:
    # It is what the daemon, collectbus run and serve --collect share.
    forbidden = ["collectbus.cli", "collectbus.daemon", "collectbus.serve"]
    assert not _offenders(graph, ["collectbus.pipeline"], forbidden)


def test_the_fleet_imports_no_front_end_nor_the_pipeline(graph: Imports) -> None:
    # The pipeline's NATS subscriber and ingest live there; the front ends use them.
    forbidden = ["collectbus.cli", "collectbus.daemon", "collectbus.serve", "collectbus.pipeline"]
    assert not _offenders(graph, ["collectbus.fleet"], forbidden)


def test_the_store_does_not_import_the_aggregate_engine(graph: Imports) -> None:
    # Migrations included: a migration that imported the engine's code would
    # change what it does when that code changes.
    assert not _offenders(graph, ["collectbus.store"], ["collectbus.aggregate"])


def test_the_store_does_not_import_the_job_tracker(graph: Imports) -> None:
    # The tracker reads the store and hands it rows; the store only writes them.
    assert not _offenders(graph, ["collectbus.store"], ["collectbus.jobtrack"])


def test_the_job_tracker_imports_no_front_end_nor_the_pipeline(graph: Imports) -> None:
    # It sits between the bus and the store; the pipeline and the front ends use it.
    forbidden = ["collectbus.cli", "collectbus.daemon", "collectbus.serve", "collectbus.pipeline"]
    assert not _offenders(graph, ["collectbus.jobtrack"], forbidden)


@pytest.mark.parametrize(
    "forbidden",
    ["collectbus.store", "collectbus.aggregate", "collectbus.config", "collectbus.cli"],
)
def test_collectors_import_neither_store_aggregate_config_nor_cli(
    graph: Imports, forbidden: str
) -> None:
    # The pipeline turns the config into collector settings; a collector takes
    # only its settings.
    assert not _offenders(graph, ["collectbus.collectors"], [forbidden])


def test_pandas_only_in_analysis(imports: Imports) -> None:
    allowed = ["collectbus.analysis", "collectbus.cli"]
    assert not _offenders(imports, ["collectbus"], ["pandas"], but=allowed)


def test_no_import_cycles(graph: Imports) -> None:
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
