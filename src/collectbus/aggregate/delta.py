"""What changed past a checkpoint, read from one snapshot: the −/+ deltas.

Two ways to know a changed row's old contribution:

- **triggers** (a table of the collectbus store): ``AFTER UPDATE``/``DELETE``
  triggers log the old and the new contribution into ``aggregate_changes``.
  For each row with logged changes, the earliest one holds what the totals
  counted, and the latest what the row contributes now (nothing if it was
  deleted): the first is retracted and the second added, with no read of the
  table (except for changes logged before the triggers logged new
  contributions, whose rows are looked up).
- **ledger** (a read-only table elsewhere): the rows that can still change
  stay open in ``aggregate_ledger`` and are re-read
  (:mod:`~collectbus.aggregate.tail`).

New rows are those past ``last_id``, read as :mod:`collectbus.pendingids`
decides (the watermark shared with the ``/metrics`` counters): ids skipped by
the watermark (PostgreSQL commits late) stay *pending* and are looked up again
on every update, until they appear or ``pending_s`` passes; in SQLite, which
reuses the highest id once its row is deleted, the watermark drops back to the
highest id still present.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import Connection

import collectbus.aggregate.driver as driver
from collectbus.aggregate.checkpoint import Changes, Checkpoint
from collectbus.aggregate.full import new_groups, parse_new_groups
from collectbus.aggregate.sql import AggregateSql
from collectbus.aggregate.state import Contribution, NewRows, contribution
from collectbus.pendingids import Pending, Window, gap_scan, gaps, lookups, still_pending, window


@dataclass(slots=True)
class Delta:
    """The checkpoint an update moves to, its writes, and the −/+ contributions."""

    after: Checkpoint
    changes: Changes = field(default_factory=Changes)
    deltas: list[tuple[Contribution, int]] = field(default_factory=list)
    #: New rows, aggregated by the database, per group: to merge.
    partial: dict[str, NewRows] = field(default_factory=dict)
    rows_read: int = 0
    #: More new rows wait past this batch.
    more: bool = False


def _contrib(sql: AggregateSql, row: Sequence[object]) -> Contribution | None:
    return contribution(row[1:], len(sql.spec.keys), len(sql.spec.measures))


def _rows_between(conn: Connection, sql: AggregateSql, lo: int, hi: int) -> list[tuple[Any, ...]]:
    return driver.rows(conn, sql.rows_between(), {"lo": lo, "hi": hi})


def _rows_with_ids(
    conn: Connection, sql: AggregateSql, ids: Sequence[int]
) -> dict[int, tuple[Any, ...]]:
    """The rows with the given ids, by id: one statement (:meth:`~collectbus.
    aggregate.sql.AggregateSql.rows_with_ids`)."""
    if not ids:
        return {}
    return by_id(driver.rows(conn, sql.rows_with_ids(), {"ids": sql.id_list(ids)}))


def by_id(rows: Iterable[tuple[Any, ...]]) -> dict[int, tuple[Any, ...]]:
    """Rows whose first column is their id, by id."""
    return {int(str(row[0])): row for row in rows}


def _reused(
    conn: Connection, sql: AggregateSql, deleted: Sequence[int], hi: int
) -> dict[int, tuple[Any, ...]]:
    """The rows now present, at or below ``hi`` (the checkpoint), under the
    ids of counted rows logged as deleted (SQLite), by id.

    An id is handed out again only when every higher id is gone, so a reused
    id lies above every counted row never deleted: walking down from the
    highest id present, each id that was logged as deleted is a new row, and
    the first that was not (or none) ends the walk. Without deletes from the
    top, this is one ``max(id)`` lookup. (A reused row edited since is in the
    log with its new contribution already; it is read again all the same.)
    """
    if not deleted:
        return {}
    logged = set(deleted)
    ids: list[int] = []
    while hi >= min(logged):
        value = driver.rows(conn, sql.max_id_upto(), {"hi": hi})[0][0]
        if value is None or (rid := int(str(value))) not in logged:
            break
        ids.append(rid)
        hi = rid - 1
    return _rows_with_ids(conn, sql, ids)


def _scalar_id(value: object) -> int:
    return int(str(value)) if value is not None else 0


def max_id(conn: Connection, sql: AggregateSql) -> int:
    value = driver.rows(conn, sql.max_id(), {})[0][0]
    return int(str(value)) if value is not None else 0


def read_window(sql: AggregateSql, cp: Checkpoint, top: int, cap: bool) -> Window:
    """What an update reads past ``cp`` with ``top`` the highest id visible
    (:func:`collectbus.pendingids.window`)."""
    return window(
        cp.last_id,
        cp.pending,
        top,
        reuses_ids=sql.dialect == "sqlite",
        batch=sql.spec.batch_rows if cap else None,
    )


def pending_rows(
    conn: Connection,
    sql: AggregateSql,
    w: Window,
    now_ns: int,
    *,
    found: Sequence[tuple[Any, ...]] | None = None,
) -> tuple[list[tuple[Any, ...]], list[Pending]]:
    """The rows of the pending ids that appeared, and what stays pending.
    ``found``: the rows of every pending range, read already in the
    caller's snapshot (else each range is read here)."""
    rows: list[tuple[Any, ...]] = []
    kept: list[Pending] = []
    looked_up = lookups(w)
    if found is not None and looked_up:
        found = sorted(found, key=lambda r: int(str(r[0])))
    for looked in looked_up:
        if found is None:
            got = _rows_between(conn, sql, looked[0] - 1, looked[1])
        else:
            got = [r for r in found if looked[0] <= int(str(r[0])) <= looked[1]]
        rows += got
        found_ids = [int(str(r[0])) for r in got]
        kept += still_pending(looked, found_ids, now_ns=now_ns, pending_s=sql.spec.pending_s)
    return rows, kept


def new_gaps(conn: Connection, sql: AggregateSql, w: Window, now_ns: int) -> list[Pending]:
    """PostgreSQL: the ids of the window that are not visible, now pending."""
    scan = gap_scan(w)
    if scan is None:
        return []
    params = {"lo": scan[0], "hi": scan[1]}
    ids = [int(str(r[0])) for r in driver.rows(conn, sql.ids_between(), params)]
    return gaps(w, ids, now_ns=now_ns)


def triggered_probes(sql: AggregateSql) -> list[str]:
    """What :func:`read_triggered` can be given, read with the checkpoint:
    the highest id."""
    return [sql.max_id()]


@dataclass(frozen=True, slots=True)
class Prefetch:
    """What an update of a store table read along with its checkpoint, in the
    same snapshot, before it knew it: the logged changes with their rows, and
    the new rows up to a batch past ``last_id``, the checkpoint this process
    wrote last. :func:`read_triggered` uses them only if the checkpoint is
    still that one; in PostgreSQL, they come in the round trip that reads
    the checkpoint."""

    last_id: int
    changes: list[tuple[Any, ...]]
    new_rows: list[tuple[Any, ...]]


def prefetch_reads(sql: AggregateSql, last_id: int) -> list[tuple[str, dict[str, object]]]:
    """The queries of a :class:`Prefetch` for a checkpoint at ``last_id``."""
    return [
        (sql.changes(), {"name": sql.spec.name}),
        (sql.packed_totals(), {"lo": last_id, "hi": last_id + sql.spec.batch_rows}),
    ]


def read_triggered(
    conn: Connection,
    sql: AggregateSql,
    cp: Checkpoint,
    *,
    now_ns: int,
    cap: bool = True,
    probed: Sequence[object] = (),
    prefetch: Prefetch | None = None,
) -> Delta:
    """The deltas of a store table, whose triggers log old contributions.

    ``probed``: the values of :func:`triggered_probes`, read in this snapshot;
    ``prefetch``: see :class:`Prefetch`.
    """
    top = _scalar_id(probed[0]) if probed else max_id(conn, sql)
    w = read_window(sql, cp, top, cap)
    last = w.last
    # A batch past the checkpoint holds exactly the rows up to ``last``: none
    # is above ``top`` in this snapshot.
    fetched = prefetch if prefetch is not None and cap and prefetch.last_id == cp.last_id else None
    delta = Delta(after=cp, more=w.more)
    out = delta.deltas
    # Edits and deletes of counted rows: retract what was counted, add what is.
    earliest: dict[int, str] = {}
    latest: dict[int, str | None] = {}
    logged = (
        fetched.changes
        if fetched is not None
        else driver.rows(conn, sql.changes(), {"name": sql.spec.name})
    )
    deleted: set[int] = set()
    for seq, rid, old, new in logged:
        delta.changes.consumed.append(seq)
        earliest.setdefault(rid, old)
        latest[rid] = new
        if new == "null":
            deleted.add(rid)
    counted = [rid for rid in earliest if cp.counted(rid)]
    n_keys, n_measures = len(sql.spec.keys), len(sql.spec.measures)
    # Logged before the triggers logged new contributions: read the row.
    unknown = [rid for rid in counted if latest[rid] is None]
    found = _rows_with_ids(conn, sql, unknown)
    # SQLite gives a new row the highest id present plus one: a counted row
    # deleted from the top may have been replaced, under its id, by a row
    # the triggers did not log (inserts are not logged).
    reused = (
        _reused(conn, sql, [rid for rid in counted if rid in deleted], min(last, cp.last_id))
        if sql.dialect == "sqlite"
        else {}
    )
    # Every logged contribution in one parse: [before, after, before, ...].
    logged_json = json.loads(
        "[" + ",".join(f"{earliest[rid]},{latest[rid] or 'null'}" for rid in counted) + "]"
    )
    for i, rid in enumerate(counted):
        before = contribution(_json_row(logged_json[2 * i]), n_keys, n_measures)
        if before is not None:
            out.append((before, -1))
        if rid > last:
            continue  # counted with the new rows
        if latest[rid] is None:
            now = _contrib(sql, found[rid]) if rid in found else None
        elif rid in reused:
            now = _contrib(sql, reused[rid])
        else:
            now = contribution(_json_row(logged_json[2 * i + 1]), n_keys, n_measures)
        if now is not None:
            out.append((now, 1))
    # Rows that were pending, one by one; new rows as one partial aggregate,
    # grouped by the database (merging partials equals aggregating at once).
    rows, pending = pending_rows(conn, sql, w, now_ns)
    out.extend((c, 1) for c in (_contrib(sql, r) for r in rows) if c is not None)
    delta.rows_read += len(rows)
    if last > cp.last_id:
        delta.partial = (
            parse_new_groups(sql, fetched.new_rows)
            if fetched is not None
            else new_groups(conn, sql, last, cp.last_id)
        )
        params = {"lo": cp.last_id, "hi": last}
        if sql.spec.filters:
            present = int(str(driver.rows(conn, sql.count_between(), params)[0][0]))
        else:  # every row present is in a group
            present = sum(g.rows for g in delta.partial.values())
        delta.rows_read += present
        if sql.dialect == "postgresql" and present < last - cp.last_id:
            pending += new_gaps(conn, sql, w, now_ns)
    delta.rows_read += len(counted)
    delta.after = replace(cp, last_id=last, pending=tuple(sorted(pending)))
    return delta


def _json_row(values: object) -> list[object]:
    """A logged contribution's values, parsed; none (no contribution) for ``null``."""
    return values if isinstance(values, list) else [0]


def initial_pending(
    conn: Connection, sql: AggregateSql, top: int, now_ns: int
) -> tuple[Pending, ...]:
    """PostgreSQL: the ids among the newest that are not visible yet."""
    if sql.dialect != "postgresql" or top <= 0:
        return ()
    return tuple(new_gaps(conn, sql, Window(0, top, ()), now_ns))


def newest_mark(
    mark: int | float | str | None, values: Iterable[object]
) -> int | float | str | None:
    """The highest ``updated_column`` value: numbers, or times kept as ISO text."""
    for value in values:
        plain = _plain(value)
        if plain is None:
            continue
        if mark is None or (isinstance(plain, str) == isinstance(mark, str) and plain > mark):  # type: ignore[operator]
            mark = plain
    return mark


def _plain(value: object) -> int | float | str | None:
    if value is None or isinstance(value, int | float | str):
        return value
    return str(value)
