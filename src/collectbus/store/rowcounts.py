"""Row counts per table: estimated cheaply by default, exact on request.

``SELECT count(*)`` reads a whole table (or its smallest index): seconds per
table at tens of millions of rows, on SQLite and on PostgreSQL alike. A health
check that monitoring polls cannot pay that, so the counts it reports are
estimates, and each method says how far to trust it:

- ``rowid_range`` (SQLite): ``max(rowid) - min(rowid) + 1``, two descents of
  the rowid b-tree, O(log n) whatever the table's size. Rowids are unique
  integers, so this is an upper bound: equal to the count while nothing was
  deleted, larger by the gaps that deleted rows leave (compaction, retention).
- ``planner`` (PostgreSQL): what the query planner itself assumes
  (``table_block_relation_estimate_size`` in ``src/backend/access/table/
  tableam.c``): ``pg_class.reltuples`` from the last VACUUM or ANALYZE, scaled
  by how much the table grew since (its size now over ``relpages``). A table
  never vacuumed or analyzed has ``reltuples = -1`` (PostgreSQL 14 and later;
  0 before), one analyzed while empty has ``relpages = 0``: for those, the
  activity statistics' ``pg_stat_user_tables.n_live_tup``, which counts
  committed inserts and deletes as they are reported (within about a second).
- ``count``: ``SELECT count(*)``, exact, for ``collectbus db status --exact``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    Table,
    bindparam,
    func,
    inspect,
    literal_column,
    select,
    text,
)
from sqlalchemy.types import Integer, Text

from collectbus.store.schema import metadata

RowCountMethod = Literal["count", "rowid_range", "planner"]

#: What each method reports, for people reading ``collectbus db status``.
METHOD_DESCRIPTIONS: dict[RowCountMethod, str] = {
    "count": "exact, by count(*)",
    "rowid_range": "estimated as max(rowid) - min(rowid) + 1, an upper bound: larger "
    "than the count by the rows deleted in between; --exact counts them",
    "planner": "estimated from PostgreSQL's statistics (pg_class.reltuples scaled to "
    "the table's size, n_live_tup before the first ANALYZE); --exact counts them",
}

_ROWID = literal_column("rowid", Integer)

_PG_ESTIMATES = """
    SELECT c.relname, c.reltuples, c.relpages,
           pg_relation_size(c.oid) / current_setting('block_size')::bigint AS pages,
           coalesce(s.n_live_tup, 0) AS live
    FROM pg_class AS c
    LEFT JOIN pg_stat_user_tables AS s ON s.relid = c.oid
    WHERE c.oid IN (SELECT to_regclass(n) FROM unnest(:names) AS n)
"""


def row_counts(
    conn: Connection, dialect: str, names: Sequence[str], *, exact: bool
) -> tuple[RowCountMethod, dict[str, int]]:
    """(method, rows per table) for those of ``names`` that exist, in their order."""
    if dialect == "postgresql" and not exact:
        # Imported here: SQLite stores never load the PostgreSQL dialect.
        from sqlalchemy.dialects.postgresql import ARRAY

        query = text(_PG_ESTIMATES).bindparams(bindparam("names", type_=ARRAY(Text)))
        rows = conn.execute(query, {"names": list(names)}).all()
        found = {
            str(r.relname): _planner_estimate(r.reltuples, r.relpages, r.pages, r.live)
            for r in rows
        }
        return "planner", {name: found[name] for name in names if name in found}
    present = set(inspect(conn).get_table_names())
    tables = [metadata.tables[name] for name in names if name in present]
    if exact:
        return "count", {
            t.name: conn.execute(select(func.count()).select_from(t)).scalar_one() for t in tables
        }
    counts: dict[str, int] = {}
    for t in tables:
        high, low = conn.execute(rowid_range_query(t)).one()
        counts[t.name] = 0 if high is None or low is None else high - low + 1
    return "rowid_range", counts


def rowid_range_query(
    table: Table, column: ColumnElement[int] = _ROWID
) -> Select[int | None, int | None]:
    """SQLite: (max(rowid), min(rowid)) of ``table`` as two scalar subqueries,
    each answered by one b-tree descent; a single ``SELECT max(rowid),
    min(rowid)`` would scan the table. Any indexed integer ``column`` in
    place of the rowid, on either database, is read the same way."""
    highest = select(func.max(column)).select_from(table).scalar_subquery()
    lowest = select(func.min(column)).select_from(table).scalar_subquery()
    return select(highest, lowest)


def _planner_estimate(reltuples: float, relpages: int, pages: int, live: int) -> int:
    if reltuples < 0 or relpages <= 0:
        return max(int(live), 0)
    return round(reltuples / relpages * pages)
