"""The queries an update runs use an index in SQLite: no full scan at any size
(docs/architecture.md, "Pitfalls": ``updated > ? AND id <= ?`` must be ``+id``)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from collectbus.aggregate.spec import AggregateSpec
from collectbus.aggregate.sql import AggregateSql
from collectbus.store import open as open_store

SPEC = AggregateSpec(
    name="agents",
    table="agent_invocations",
    keys=("agent_name",),
    measures=("duration_seconds",),
    updated_column="updated_at",
    error_column="status",
    error_values=("error",),
)
SQL = AggregateSql(SPEC, "sqlite")


@pytest.fixture
def conn(tmp_path: Path) -> sqlite3.Connection:
    path = tmp_path / "plans.db"
    open_store(f"sqlite:///{path}").close()  # the store's own tables too
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE agent_invocations (id INTEGER PRIMARY KEY, timestamp REAL, agent_name TEXT,"
        " status TEXT, duration_seconds REAL, updated_at REAL)"
    )
    db.execute("CREATE INDEX ix_agent_invocations_updated_at ON agent_invocations (updated_at)")
    db.executemany(
        "INSERT INTO agent_invocations VALUES (?, ?, ?, ?, ?, ?)",
        [(i, i, f"a{i % 5}", "ok", i / 10, i) for i in range(1, 2001)],
    )
    db.commit()
    return db


def plan(conn: sqlite3.Connection, query: str, params: dict[str, object]) -> str:
    rows = conn.execute(f"EXPLAIN QUERY PLAN {query}", params).fetchall()
    return " | ".join(str(r[-1]) for r in rows)


@pytest.mark.parametrize(
    ("query", "params", "uses"),
    [
        (SQL.max_id(), {}, "agent_invocations"),
        (SQL.rows_between(), {"lo": 100, "hi": 1100}, "INTEGER PRIMARY KEY (rowid>? AND rowid<?)"),
        (SQL.changes(), {"name": "agents"}, "ix_aggregate_changes_name_seq"),
        (SQL.rows_with_ids(), {"ids": SQL.id_list([3, 7])}, "INTEGER PRIMARY KEY (rowid=?)"),
        (SQL.block_digests(), {"lo": 1, "hi": 9}, "INTEGER PRIMARY KEY (rowid>? AND rowid<?)"),
        (
            SQL.split_digests(),
            {"lo": 1, "mid": 5, "hi": 9},
            "INTEGER PRIMARY KEY (rowid>? AND rowid<?)",
        ),
        (SQL.rows_updated(), {"mark": 1900, "hi": 1000}, "ix_agent_invocations_updated_at"),
        (SQL.count_between(), {"lo": 1, "hi": 9}, "INTEGER PRIMARY KEY (rowid>? AND rowid<?)"),
        (SQL.packed_totals(), {"lo": 1, "hi": 9}, "INTEGER PRIMARY KEY (rowid>? AND rowid<?)"),
        (
            "SELECT seq, row_id, old FROM aggregate_changes WHERE name = :n ORDER BY seq",
            {"n": "agents"},
            "ix_aggregate_changes_name_seq",
        ),
        (
            "SELECT row_id, contribution FROM aggregate_ledger WHERE name = :n AND row_id > :lo",
            {"n": "agents", "lo": 5},
            "(name=? AND row_id>?)",
        ),
        (
            "SELECT part, measures, sketches FROM aggregate_parts WHERE name = :n"
            " AND group_key IN ('[\"a\"]') ORDER BY group_key, part",
            {"n": "agents"},
            "(name=? AND group_key=?)",
        ),
    ],
)
def test_incremental_queries_do_not_scan(
    conn: sqlite3.Connection, query: str, params: dict[str, object], uses: str
) -> None:
    text = plan(conn, query, params)
    # A scan of the ids passed in (json_each of a parameter) is no scan of a table.
    scans = [p for p in text.split("|") if p.strip().startswith("SCAN") and "json_each" not in p]
    assert not scans, text
    assert uses in text, text


def test_without_the_plus_sqlite_would_range_scan_the_rowid(conn: sqlite3.Connection) -> None:
    """The pitfall the ``+id`` avoids: the updated index goes unused."""
    plain = SQL.rows_updated().replace('+"id"', '"id"')
    assert "ix_agent_invocations_updated_at" not in plan(conn, plain, {"mark": 1900, "hi": 1000})
    assert "ix_agent_invocations_updated_at" in plan(
        conn, SQL.rows_updated(), {"mark": 1900, "hi": 1000}
    )


def test_the_full_recompute_reads_the_index_in_order(conn: sqlite3.Connection) -> None:
    """One ordered scan of the aggregate's index: no sort of the whole table."""
    params = {"hi": 2000}
    assert "USE TEMP B-TREE FOR GROUP BY" in plan(conn, SQL.packed_blocks(), params)
    for stmt in SQL.create_index():
        conn.execute(stmt)
    text = plan(conn, SQL.packed_blocks(), params)
    assert f"USING COVERING INDEX {SQL.index_name}" in text, text
    assert "TEMP B-TREE" not in text, text


def test_new_rows_keep_to_the_rowid_range_beside_the_index(conn: sqlite3.Connection) -> None:
    """The index is in GROUP BY order; new rows must still be a rowid range."""
    for stmt in SQL.create_index():
        conn.execute(stmt)
    text = plan(conn, SQL.packed_totals(), {"lo": 1990, "hi": 2000})
    assert "INTEGER PRIMARY KEY (rowid>? AND rowid<?)" in text, text
    assert SQL.index_name not in text, text


def test_the_index_gives_the_same_totals(conn: sqlite3.Connection) -> None:
    before = sorted(conn.execute(SQL.packed_blocks(), {"hi": 2000}).fetchall())
    for stmt in SQL.create_index():
        conn.execute(stmt)
    after = sorted(conn.execute(SQL.packed_blocks(), {"hi": 2000}).fetchall())
    # The same rows; each block's codes may come in another order.
    assert [r[:-1] for r in after] == [r[:-1] for r in before]
    assert [sorted(json.loads(r[-1])) for r in after] == [sorted(json.loads(r[-1])) for r in before]
    conn.execute(f"CREATE INDEX {SQL.legacy_index_name} ON agent_invocations (agent_name)")
    for stmt in SQL.drop_index():
        conn.execute(stmt)
    names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")]
    assert SQL.index_name not in names
    assert SQL.legacy_index_name not in names


def test_new_rows_go_at_the_end_of_their_group_in_the_index(conn: sqlite3.Connection) -> None:
    """The index is in (keys, block, id) order: ids only grow, so each new
    row's entry follows every entry of its group, and an insert writes at the
    end of each group's range, not on a page per row (an index in value order
    would)."""
    for stmt in SQL.create_index():
        conn.execute(stmt)
    text = plan(
        conn,
        f"SELECT id FROM agent_invocations ORDER BY agent_name, {SQL.block}, id",
        {},
    )
    assert f"COVERING INDEX {SQL.index_name}" in text, text
    assert "TEMP B-TREE" not in text, text


def test_extremes_read_the_groups_range_of_the_index(conn: sqlite3.Connection) -> None:
    """After an extreme leaves, min and max come from the group's entries in
    the aggregate's index, not from a scan of the table."""
    for stmt in SQL.create_index():
        conn.execute(stmt)
    params = {"k0": "a1", "hi": 2000}
    text = plan(conn, SQL.extremes("duration_seconds"), params)
    assert f"COVERING INDEX {SQL.index_name} (agent_name=?)" in text, text
    assert conn.execute(SQL.extremes("duration_seconds"), params).fetchone() == (0.1, 199.6)
