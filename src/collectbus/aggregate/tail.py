"""The deltas of a table of another database (sqltail), opened read-only.

No trigger can log what a changed row of such a table contributed, so the
rows that can still change stay *open*: what each contributed is kept in a
ledger (``aggregate_ledger``), and every update re-reads them, so an edit is
a −/+ and a vanished row a −. Which rows are open:

- **by state** (``open_when``, an SQL condition such as ``status = 'running'``,
  or ``open_column``, NULL until the row is final): the open rows, however
  old, re-read every update; a row that closes leaves the ledger with its final
  contribution counted. An update reads those rows and the new ones, nothing
  else: its cost follows the rows in flight, not the table. From PostgreSQL
  only the open rows that changed come back: those of a table whose place
  (``ctid``) or ``xmin`` differs from when they were read, those of a view
  whose digest does (:meth:`~collectbus.aggregate.sql.AggregateSql.changed_rows`).
- **by age** (neither configured): the newest ``open_rows`` rows, an
  approximation: a row that changes after it left that window is found by
  the block check (:mod:`~collectbus.aggregate.blocks`) or the verifying
  refresh. The ledger covers every counted row above its *floor*, and the
  window never moves below it: when the newest rows are deleted and the
  highest id drops, the rows below the floor stay closed, counted once.
  With an ``updated_column``, closed rows changed after the watermark are
  read too (and the ledger keeps every row).

Closed rows are checked block by block (:mod:`~collectbus.aggregate.blocks`):
a delete, an id re-used or an edit of a closed row shows as a block that
differs, and the engine repairs it with a full refresh.

In PostgreSQL an id is handed out before its transaction commits: new ids
skipped by the watermark stay *pending* and are read again on every update,
until they appear or ``pending_s`` passes (:mod:`collectbus.pendingids`, as
for a table of the store).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, cast

from sqlalchemy import Connection

import collectbus.aggregate.driver as driver
from collectbus.aggregate.blocks import (
    BLOCK_IDS,
    ZERO,
    Adjustments,
    CheckResult,
    Digest,
    all_digests,
    block_of,
    check,
    compare,
    plan_sweep,
    read_digests,
)
from collectbus.aggregate.checkpoint import Changes, Checkpoint, load_blocks, load_ledger
from collectbus.aggregate.delta import (
    Delta,
    _contrib,
    _rows_between,
    initial_pending,
    max_id,
    new_gaps,
    newest_mark,
    pending_rows,
    read_window,
)
from collectbus.aggregate.full import parse_new_groups
from collectbus.aggregate.sql import BELOW_ALL, AggregateSql
from collectbus.aggregate.state import Contribution
from collectbus.pendingids import gaps


@dataclass(slots=True)
class TailCache:
    """What an aggregator keeps between updates of a read-only source, valid
    while the checkpoint is at ``version``: the recorded block digests and,
    for rows open by state, the ledger and what each open row was when last
    read (:func:`_seen`): an unchanged row is skipped without parsing it, and
    in PostgreSQL not even sent."""

    version: int | None = None
    blocks: dict[int, Digest] = field(default_factory=dict)
    ledger: dict[int, Contribution | None] = field(default_factory=dict)
    seen: dict[int, object] = field(default_factory=dict)
    #: PostgreSQL: the texts of :func:`_known`'s arrays, kept with ``ledger``
    #: and ``seen`` (None: to build again from them).
    known: KnownTexts | None = None

    def load(self, st: Connection, sql: AggregateSql, cp: Checkpoint) -> None:
        """Read the store's ledger and digests unless already held for ``cp``."""
        if self.version == cp.version:
            return
        self.blocks = load_blocks(st, sql.spec.name)
        self.ledger = (
            load_ledger(st, sql.spec.name, above=BELOW_ALL) if sql.spec.open_by_state else {}
        )
        self.seen = {}
        self.known = None
        self.version = cp.version

    def invalidate(self) -> None:
        self.version = None

    def remembered(self, sql: AggregateSql, changes: Changes, seen: dict[int, object]) -> None:
        """After the ledger and ``seen`` took an update's changes (and
        ``seen``): the same changes to :attr:`known`."""
        known = self.known
        if known is None:
            return
        if changes.ledger_replace or not sql.spec.open_by_state:
            self.known = None
            return
        for rid in changes.ledger_drop:
            known.drop(rid)
        for rid in changes.ledger_put:
            known.put(rid, self.seen.get(rid))
        for rid, value in seen.items():
            if rid in self.ledger:
                known.put(rid, value)


class KnownTexts:
    """Per open row, in one order, the texts of the elements of
    :func:`_known`'s arrays: its id and what it was when last read (its
    place and ``xmin``, or its digest). Updated row by row, so that an
    update joins each array's texts instead of formatting thousands."""

    __slots__ = ("_by_version", "first", "ids", "second")

    def __init__(self, sql: AggregateSql) -> None:
        self._by_version = sql.by_version
        self.ids: dict[int, str] = {}
        self.first: dict[int, str] = {}
        self.second: dict[int, str] = {}

    def put(self, rid: int, seen: object) -> None:
        self.ids[rid] = str(rid)
        if self._by_version:
            version = cast(Version, seen) if isinstance(seen, tuple) else UNKNOWN
            self.first[rid], self.second[rid] = version[0], version[1]
        else:
            self.first[rid] = driver.pg_array([seen])[1:-1]

    def drop(self, rid: int) -> None:
        self.ids.pop(rid, None)
        self.first.pop(rid, None)
        self.second.pop(rid, None)

    def params(self) -> dict[str, object]:
        """The parameters of :meth:`~collectbus.aggregate.sql.AggregateSql.changed_rows`."""
        out: dict[str, object] = {"ids": "{" + ",".join(self.ids.values()) + "}"}
        first = "{" + ",".join(self.first.values()) + "}"
        if not self._by_version:
            out["digests"] = first
            return out
        out["tids"] = first
        out["xmins"] = "{" + ",".join(self.second.values()) + "}"
        return out


@dataclass(slots=True)
class TailDelta(Delta):
    """A :class:`~collectbus.aggregate.delta.Delta` of a read-only source, with
    what the block check found."""

    mismatched: list[int] = field(default_factory=list)
    #: Every counted block was compared with the source in this snapshot.
    verified: bool = False
    #: Where the next update's sweep starts; whether this update's check
    #: began a pass of the sweep, and whether it ended one.
    next_sweep: int = 0
    pass_began: bool = False
    pass_ended: bool = False
    #: Open rows read and changed (by id, :func:`_seen`): for the cache, once written.
    seen: dict[int, object] = field(default_factory=dict)


def _layout(sql: AggregateSql) -> tuple[int, int]:
    """Where a row of ``_select`` holds its open flag and its check term."""
    spec = sql.spec
    open_at = 3 + len(spec.keys) + 2 * len(spec.measures)
    return open_at, open_at + 1


def _seen(sql: AggregateSql, row: Sequence[Any], term_at: int) -> object:
    """What an open row is as read, to tell later whether it changed: its
    digest (PostgreSQL, computed by the server), after its version when the
    source has them (:data:`Version`); else its values."""
    if sql.by_version:
        return (f'"{row[term_at + 1]}"', str(row[term_at + 2]), row[term_at + 3])
    return row[term_at + 1] if sql.digests else tuple(row[1:term_at])


#: An open row's version as :func:`_seen` keeps it (:attr:`AggregateSql.by_version`):
#: its place, as an element of an array's text, its ``xmin``, and its digest.
Version = tuple[str, str, object]
#: The version of a row not read since the ledger was loaded: not known.
UNKNOWN: Version = ("NULL", "NULL", None)


def _same(sql: AggregateSql, before: object, now: object) -> bool:
    """Whether an open row read again contributes as it did (what
    :func:`_seen` gave, then and now): by version, a row written since
    in columns the aggregate does not read has a new version, the same
    digest."""
    if sql.by_version:
        return isinstance(before, tuple) and isinstance(now, tuple) and before[2] == now[2]
    return before == now


def _known(sql: AggregateSql, cache: TailCache) -> dict[str, object]:
    """The parameters of :meth:`~collectbus.aggregate.sql.AggregateSql.changed_rows`:
    the open rows' ids, each with what it was when last read (NULL: not
    known), as the text of arrays (thousands of rows per update: from
    :class:`KnownTexts`, built once and then kept up to date)."""
    if cache.known is None:
        known = KnownTexts(sql)
        for rid in cache.ledger:
            known.put(rid, cache.seen.get(rid))
        cache.known = known
    return cache.known.params()


class SnapshotNeeded(Exception):
    """A read in one statement (``at_once``) that cannot end without another
    read in the same snapshot (the newest rows deleted, an extreme value
    retracted): the caller reads again, in a transaction."""


def at_once(sql: AggregateSql) -> bool:
    """Whether an update can read the source in ONE statement
    (:func:`read_tailed`'s ``at_once``): rows open by state in PostgreSQL."""
    return sql.digests


def read_tailed(
    source: Connection,
    store: Connection | None,
    sql: AggregateSql,
    cp: Checkpoint,
    cache: TailCache,
    *,
    now_ns: int,
    cap: bool = True,
    verify: bool = True,
    at_once: bool = False,
) -> TailDelta:
    """The deltas of a read-only table since ``cp``, and (``verify``) the block
    check. ``store``: None when ``cache`` holds the ledger and digests of
    ``cp`` already (rows open by state need nothing else from the store).
    ``at_once`` (where :func:`at_once` allows): every read in one statement,
    outside a transaction (its own snapshot); raises :class:`SnapshotNeeded`
    when that is not enough."""
    spec = sql.spec
    if store is not None:
        cache.load(store, sql, cp)
    assert cache.version == cp.version
    if spec.open_by_state:
        return _read_by_state(
            source, sql, cp, cache, now_ns=now_ns, cap=cap, verify=verify, at_once=at_once
        )
    assert not at_once
    assert store is not None
    top = max_id(source, sql)
    last = read_window(sql, cp, top, cap).last
    delta = TailDelta(after=cp, more=top > last)
    adjust = Adjustments()
    dirty: set[int] = set()
    closed_hi = _by_age(source, store, sql, cp, delta, adjust, dirty, last)
    after = replace(delta.after, last_id=last, floor=closed_hi)
    recorded = {**cache.blocks, **adjust.applied(cache.blocks)}
    for b in sorted(dirty):  # closed rows edited and read: take the source's digest
        lo, hi = b * BLOCK_IDS - 1, min(closed_hi, (b + 1) * BLOCK_IDS - 1)
        recorded[b] = read_digests(source, sql, lo, hi).get(b, ZERO)
    delta.changes.block_puts = {b: recorded[b] for b in set(adjust.added) | dirty}
    sweep = cp.sweep or 0
    if verify:
        _checked(
            delta,
            check(
                source,
                sql,
                recorded,
                closed_hi=closed_hi,
                sweep=sweep,
                verify_rows=spec.verify_rows,
            ),
        )
    else:
        delta.next_sweep = sweep
    delta.after = replace(after, sweep=delta.next_sweep)
    return delta


def _checked(delta: TailDelta, result: CheckResult) -> None:
    delta.mismatched, delta.verified = result.mismatched, result.complete
    delta.next_sweep, delta.pass_began, delta.pass_ended = result.sweep, result.began, result.ended


#: Above any id: the upper bound of an uncapped read.
ABOVE_ALL = 2**62


def _read_by_state(
    source: Connection,
    sql: AggregateSql,
    cp: Checkpoint,
    cache: TailCache,
    *,
    now_ns: int,
    cap: bool,
    verify: bool,
    at_once: bool = False,
) -> TailDelta:
    """Rows open by state: every read of the update in one round trip
    (PostgreSQL), sent before the highest id is known. A batch past the
    checkpoint holds exactly the rows up to ``last``: none is above the highest
    id in this snapshot. The reads: the highest id; the ledger's rows by id;
    the new rows (grouped by the database, and the open ones one by one); the
    digests of the newest blocks, split into the rows counted before and the
    new closed rows; and the sweep's blocks. ``at_once``: those in one
    statement, with the rows of the pending ids and, when ids are missing
    among the new ones, the ids present (:func:`_read_at_once`)."""
    spec = sql.spec
    hi = cp.last_id + spec.batch_rows if cap else ABOVE_ALL
    plan = plan_sweep(cp.sweep or 0, block_of(max(cp.last_id, 0)), spec.verify_rows)
    new: dict[str, object] = {"lo": cp.last_id, "hi": hi}
    if sql.digests:  # only the open rows that changed
        ids: Sequence[int] = ()
        ledger_read: tuple[str, dict[str, object]] = (sql.changed_rows(), _known(sql, cache))
    else:
        ids = sorted(cache.ledger)
        ledger_read = (sql.rows_with_ids(), {"ids": sql.id_list(ids)})
    reads: list[tuple[str, dict[str, object]]] = [
        (sql.max_id(), {}),
        ledger_read,
        (sql.packed_totals(), new),
        (sql.open_rows_between(), new),
        (sql.split_digests(), {"lo": plan.newest_lo(), "mid": cp.last_id, "hi": hi}),
    ]
    swept = plan.swept_ids() if verify else None
    if at_once:
        found = _read_at_once(source, sql, cp, reads, swept, hi)
    else:
        if swept is not None:
            reads.append((sql.block_digests(), {"lo": swept[0], "hi": swept[1]}))
        found = driver.rows_many(source, reads)
    top = int(str(found[0][0][0])) if found[0][0][0] is not None else 0
    w = read_window(sql, cp, top, cap)
    last = w.last
    delta = TailDelta(after=cp, more=w.more)
    adjust = Adjustments()
    _open_rows(sql, cache, delta, adjust, ids or cache.ledger.keys(), found[1])
    rows, pending = pending_rows(source, sql, w, now_ns, found=found[6] if at_once else None)
    _count_new(sql, rows, delta, adjust)
    digests: dict[int, Digest] = {}  # the newest blocks' in the source
    if last > cp.last_id:
        delta.partial = parse_new_groups(sql, found[2])
        _term_at = _layout(sql)[1]
        for row in found[3]:
            rid = int(str(row[0]))
            delta.changes.ledger_put[rid] = _contrib(sql, row)
            delta.seen[rid] = _seen(sql, row, _term_at)
        present = len(found[3])
        for b, is_new, n, id_sum, term_sum in found[4]:
            d = (int(n), int(id_sum), int(term_sum))
            if is_new:
                adjust.add({int(b): d})
                present += d[0]
            digests[int(b)] = _plus(digests.get(int(b), ZERO), d)
        delta.rows_read += present
        if sql.dialect == "postgresql" and present < last - cp.last_id:
            if not at_once:
                pending += new_gaps(source, sql, w, now_ns)
            elif not found[7]:  # the statement's test disagrees: never expected
                raise SnapshotNeeded("the ids of the new rows")
            else:
                present_ids = sorted(int(str(r[0])) for r in found[7])
                pending += gaps(w, present_ids, now_ns=now_ns)
    else:
        for b, _new, n, id_sum, term_sum in found[4]:
            digests[int(b)] = _plus(digests.get(int(b), ZERO), (int(n), int(id_sum), int(term_sum)))
    recorded = {**cache.blocks, **adjust.applied(cache.blocks)}
    delta.changes.block_puts = {b: recorded[b] for b in adjust.added}
    if verify:
        if top < cp.last_id and block_of(max(top, 0)) < plan.newest:
            # The newest rows deleted (SQLite then hands their ids out again):
            # the blocks they left must now hold what was counted of them.
            if at_once:
                raise SnapshotNeeded("the blocks the newest rows left")
            above = plan.newest_lo()
            plan = replace(plan, newest=block_of(max(top, 0)))
            digests.update(read_digests(source, sql, plan.newest_lo(), above))
        if swept is not None:
            digests.update((int(b), (int(n), int(s), int(t))) for b, n, s, t in found[5])
        _checked(delta, plan.result(compare(digests, recorded, plan)))
    else:
        delta.next_sweep = cp.sweep or 0
    delta.after = replace(
        cp, last_id=last, floor=None, pending=tuple(sorted(pending)), sweep=delta.next_sweep
    )
    return delta


def _read_at_once(
    source: Connection,
    sql: AggregateSql,
    cp: Checkpoint,
    reads: list[tuple[str, dict[str, object]]],
    swept: tuple[int, int] | None,
    hi: int,
) -> list[list[tuple[Any, ...]]]:
    """The reads of :func:`_read_by_state` (the highest id, the ledger's
    changed rows, the new rows grouped and open, the newest blocks' digests),
    then the sweep's digests (none: an empty range), the rows of the pending
    ids and the ids of the new rows if some are missing: ONE statement, one
    snapshot (:func:`~collectbus.aggregate.driver.rows_at_once`), the same
    text every update (prepared once)."""
    Part = driver.Part
    row, packed = sql.row_width, sql.packed_width
    at_rows, at_packed = 2, 2 + row + 1
    at_split = at_packed + packed
    at_sweep = at_split + 5
    sweep = swept if swept is not None else (0, 0)
    los = [lo for lo, _, _ in cp.pending]
    his = [hi for _, hi, _ in cp.pending]
    parts = [
        Part(*reads[0], at=1, width=1),
        Part(*reads[1], at=at_rows, width=row + 1),
        Part(*reads[2], at=at_packed, width=packed),
        Part(*reads[3], at=at_rows, width=row),
        Part(*reads[4], at=at_split, width=5),
        Part(sql.block_digests(), {"lo": sweep[0], "hi": sweep[1]}, at=at_sweep, width=4),
        Part(
            sql.rows_in_ranges(),
            {"los": sql.id_list(los), "his": sql.id_list(his)},
            at=at_rows,
            width=row,
        ),
        Part(sql.ids_if_gaps(), {"lo": cp.last_id, "hi": hi}, at=1, width=1),
    ]
    return driver.rows_at_once(source, parts)


def _plus(a: Digest, b: Digest) -> Digest:
    return (a[0] + b[0], a[1] + b[1], a[2] + b[2])


def _open_rows(
    sql: AggregateSql,
    cache: TailCache,
    delta: TailDelta,
    adjust: Adjustments,
    ids: Collection[int],
    rows: Sequence[Sequence[Any]],
) -> None:
    """The ledger's rows (``ids``) as read now: an unchanged open row is
    skipped, a changed one retracted and added again, a closed one counted as
    it ends and checked by its block from now on, a vanished one retracted.
    ``rows``: those of :meth:`~collectbus.aggregate.sql.AggregateSql.changed_rows`
    (PostgreSQL: the changed and the vanished ones only), else every one
    present."""
    open_at, term_at = _layout(sql)
    changes, out, seen = delta.changes, delta.deltas, cache.seen
    if sql.digests:
        present = [r for r in rows if r[0] is not None]
        gone = [int(str(r[-1])) for r in rows if r[0] is None]
    else:
        present = list(rows)
        found = {int(str(r[0])) for r in rows}
        gone = [rid for rid in ids if rid not in found] if len(found) < len(ids) else []
    delta.rows_read += len(ids) - len(gone)  # every open row was read (by the server)
    for rid in gone:  # deleted while open
        before = cache.ledger[rid]
        if before is not None:
            out.append((before, -1))
        changes.ledger_drop.append(rid)
    for row in present:
        rid = int(str(row[0]))
        now_seen = _seen(sql, row, term_at)
        still_open = bool(row[open_at])
        if still_open and _same(sql, seen.get(rid), now_seen):
            if now_seen != seen.get(rid):  # a new version only: not read again
                delta.seen[rid] = now_seen
            continue
        before = cache.ledger[rid]
        now = _contrib(sql, row)
        if now != before:
            if before is not None:
                out.append((before, -1))
            if now is not None:
                out.append((now, 1))
        if still_open:
            delta.seen[rid] = now_seen
            if now != before:
                changes.ledger_put[rid] = now
        else:  # closed: counted as it is now, checked by its block from now on
            changes.ledger_drop.append(rid)
            adjust.close(rid, row[term_at])


def _count_new(
    sql: AggregateSql, rows: Sequence[Sequence[Any]], delta: TailDelta, adjust: Adjustments
) -> None:
    """Rows that just became visible (pending ids): counted; open ones into
    the ledger, closed ones into their block's digest."""
    open_at, term_at = _layout(sql)
    for row in rows:
        rid = int(str(row[0]))
        now = _contrib(sql, row)
        if now is not None:
            delta.deltas.append((now, 1))
        if row[open_at]:
            delta.changes.ledger_put[rid] = now
            delta.seen[rid] = _seen(sql, row, term_at)
        else:
            adjust.close(rid, row[term_at])
    delta.rows_read += len(rows)


def _by_age(
    source: Connection,
    store: Connection,
    sql: AggregateSql,
    cp: Checkpoint,
    delta: TailDelta,
    adjust: Adjustments,
    dirty: set[int],
    last: int,
) -> int:
    """Open rows by age: rescan the window above the floor, diff with the
    ledger; the new floor (rows at or below it are closed)."""
    spec = sql.spec
    _open_at, term_at = _layout(sql)
    floor = cp.floor if cp.floor is not None else max(0, cp.last_id - spec.open_rows)
    # Never below what the ledger covers: (floor, last_id].
    rows = _rows_between(source, sql, floor, last)
    seen: dict[int, tuple[Any, ...]] = {int(str(r[0])): r for r in rows}
    late: list[tuple[Any, ...]] = []
    if spec.updated_column and cp.mark is not None:
        late = driver.rows(source, sql.rows_updated(), {"mark": cp.mark, "hi": floor})
        for r in late:
            rid = int(str(r[0]))
            seen[rid] = r
            dirty.add(block_of(rid))
    ledger = load_ledger(store, spec.name, above=floor, ids=[int(str(r[0])) for r in late])
    for rid, row in seen.items():
        now = _contrib(sql, row)
        before = ledger.get(rid)
        if now == before:
            continue
        if before is not None:
            delta.deltas.append((before, -1))
        if now is not None:
            delta.deltas.append((now, 1))
            delta.changes.ledger_put[rid] = now
        else:
            delta.changes.ledger_drop.append(rid)
    for rid, before in ledger.items():
        if rid not in seen and before is not None:  # deleted while open
            delta.deltas.append((before, -1))
            delta.changes.ledger_drop.append(rid)
    new_floor = min(max(floor, last - spec.open_rows), last)
    for rid, row in seen.items():
        if floor < rid <= new_floor:  # leaves the window: closed from now on
            adjust.close(rid, row[term_at])
    if not spec.updated_column:
        delta.changes.ledger_prune_below = new_floor
    mark = cp.mark
    if spec.updated_column:
        mark = newest_mark(mark, (r[-1] for r in seen.values()))
    delta.rows_read = len(seen)
    delta.after = replace(cp, mark=mark)
    return new_floor


@dataclass(slots=True)
class Rebuilt:
    """A read-only source's ledger, digests and checkpoint state, from scratch."""

    ledger: dict[int, Contribution | None]
    blocks: dict[int, Digest]
    floor: int | None
    mark: int | float | str | None
    pending: tuple[tuple[int, int, int], ...]


def rebuild(source: Connection, sql: AggregateSql, top: int, now_ns: int) -> Rebuilt:
    """The ledger and block digests of a read-only source at ``top``, read
    in the caller's snapshot (a build, a full refresh)."""
    spec = sql.spec
    ledger: dict[int, Contribution | None] = {}
    marks: list[object] = []
    if spec.open_by_state:
        rows = driver.rows(source, sql.open_rows_upto(), {"hi": top})
        floor = None
        closed_hi = top
        pending = initial_pending(source, sql, top, now_ns)
    else:
        floor = max(0, top - spec.open_rows)
        lo = BELOW_ALL if spec.updated_column else floor
        rows = driver.rows(source, sql.rows_between(), {"lo": lo, "hi": top})
        closed_hi = floor
        pending = ()
    for row in rows:
        c = _contrib(sql, row)
        if c is not None or spec.open_by_state:
            ledger[int(str(row[0]))] = c
        if spec.updated_column:
            marks.append(row[-1])
    return Rebuilt(
        ledger=ledger,
        blocks=all_digests(source, sql, closed_hi),
        floor=floor,
        mark=newest_mark(None, marks) if spec.updated_column else None,
        pending=pending,
    )
