"""A full recompute: the aggregate's ``GROUP BY`` over every counted row.

Used to build an aggregate the first time, to backfill it, and by the periodic
full refresh that checks the incremental state. It runs inside the caller's
snapshot, so the result matches one checkpoint exactly. Totals and the sketch
buckets are both grouped by the database: nothing per row comes back to Python.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import Connection

import collectbus.aggregate.driver as driver
from collectbus.aggregate.sql import AggregateSql
from collectbus.aggregate.state import (
    GroupKey,
    GroupState,
    NewRows,
    key_json,
    key_value,
    merge_partial,
    number,
)


def _raw_rows(
    conn: Connection, sql: AggregateSql, query: str, params: dict[str, object]
) -> list[tuple[Any, ...]]:
    """Rows as plain tuples from the driver's cursor: the bucket query returns
    about one row per (group, bucket); a SQLAlchemy Row for each costs more."""
    return driver.rows(conn, query, params)


def full_groups(conn: Connection, sql: AggregateSql, last_id: int) -> dict[str, GroupState]:
    """Every group of rows with ``id <= last_id``, keyed by the group's JSON key.

    SQLite reads the aggregate's index in order, one row per group and block
    of ids with the block's sketch codes (:meth:`~collectbus.aggregate.sql.AggregateSql.packed_blocks`),
    and the blocks are merged; PostgreSQL hashes the rows by group and bucket
    (:meth:`~collectbus.aggregate.sql.AggregateSql.full_totals`).
    """
    if sql.dialect == "sqlite":
        groups: dict[str, GroupState] = {}
        rows = _raw_rows(conn, sql, sql.packed_blocks(), {"hi": last_id})
        merge_partial(groups, _packed_rows(sql, rows), len(sql.spec.measures))
        return groups
    return _hashed_groups(conn, sql, last_id)


def _hashed_groups(conn: Connection, sql: AggregateSql, last_id: int) -> dict[str, GroupState]:
    spec = sql.spec
    nk = len(spec.keys)
    groups: dict[str, GroupState] = {}
    params = {"hi": last_id}
    names: dict[tuple[object, ...], str] = {}
    split = 1 if spec.measures else 0  # rows are split by the first measure's bucket
    for row in _raw_rows(conn, sql, sql.full_totals(), dict(params)):
        raw = tuple(row[:nk])
        gkey = names.get(raw)
        if gkey is None:
            gkey = names[raw] = key_json(tuple(key_value(v) for v in raw))
        group = groups.get(gkey)
        if group is None:
            group = groups[gkey] = GroupState.empty(len(spec.measures))
        base = nk + split
        group.count += int(row[base])
        group.errors += int(row[base + 1] or 0)
        for i, state in enumerate(group.measures):
            n, total, low, high = row[base + 2 + 4 * i : base + 6 + 4 * i]
            if not n:
                continue
            state.n += int(n)
            state.sum += number(total) or 0
            low, high = number(low), number(high)
            state.min = (
                low if state.min is None or (low is not None and low < state.min) else state.min
            )
            state.max = (
                high if state.max is None or (high is not None and high > state.max) else state.max
            )
        if split and row[nk] is not None:
            group.measures[0].sketch.counts[int(row[nk])] = int(row[base + 2])
    for i, measure in enumerate(spec.measures):
        if i == 0:
            continue  # its sketch came with the totals
        rows = _raw_rows(conn, sql, sql.full_buckets(measure), dict(params))
        for brow in rows:
            raw = tuple(brow[:nk])
            gkey = names.get(raw)
            if gkey is None:
                gkey = names[raw] = key_json(tuple(key_value(v) for v in raw))
            # One row per (group, bucket): set, not add.
            groups[gkey].measures[i].sketch.counts[int(brow[nk])] = int(brow[nk + 1])
    return groups


def new_groups(
    conn: Connection, sql: AggregateSql, last_id: int, after_id: int
) -> dict[str, NewRows]:
    """The rows with ``after_id < id <= last_id``, one row per group: what
    :func:`full_groups` of that range gives, the sketch buckets left as the
    database joined them (they are counted where they are merged)."""
    params: dict[str, object] = {"hi": last_id, "lo": after_id}
    return parse_new_groups(sql, _raw_rows(conn, sql, sql.packed_totals(), params))


def parse_new_groups(sql: AggregateSql, rows: Iterable[Sequence[Any]]) -> dict[str, NewRows]:
    """The rows of :meth:`~collectbus.aggregate.sql.AggregateSql.packed_totals`
    as :func:`new_groups` gives them."""
    return dict(_packed_rows(sql, rows))


def _packed_rows(sql: AggregateSql, rows: Iterable[Sequence[Any]]) -> Iterator[tuple[str, NewRows]]:
    """Each row of a packed query (one group, or one block of a group) as
    (group key, its new rows)."""
    spec = sql.spec
    nk, nm = len(spec.keys), len(spec.measures)
    for row in rows:
        if not row[nk]:
            continue  # no row in the range (an aggregate without keys)
        measures = []
        for i in range(nm):
            n, total, low, high = row[nk + 2 + 4 * i : nk + 6 + 4 * i]
            measures.append((int(n or 0), number(total) or 0, number(low), number(high)))
        raw = tuple(row[:nk])
        key = key_json(raw if all(type(v) is str for v in raw) else tuple(map(key_value, raw)))
        codes = [str(c or "") for c in row[nk + 2 + 4 * nm :]]
        yield key, NewRows(int(row[nk]), int(row[nk + 1] or 0), measures, codes)


def recompute_extremes(
    conn: Connection,
    sql: AggregateSql,
    last_id: int,
    groups: dict[str, GroupState],
    stale: Iterable[tuple[str, GroupKey, int]],
) -> int:
    """Recompute min and max of the given (group, measure) pairs (whose
    extreme row left); how many were. In SQLite, each is a range of the
    aggregate's index (the group's entries); in PostgreSQL, the group's rows."""
    done = 0
    for gkey, key, index in stale:
        group = groups.get(gkey)
        if group is None or group.count <= 0 or group.measures[index].n <= 0:
            continue
        state = group.measures[index]
        params: dict[str, object] = {f"k{i}": v for i, v in enumerate(key)}
        params["hi"] = last_id
        extremes = sql.extremes(sql.spec.measures[index])
        low, high = driver.rows(conn, extremes, params)[0]
        state.min, state.max = number(low), number(high)
        done += 1
    return done
