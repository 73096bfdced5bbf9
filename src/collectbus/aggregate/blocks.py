"""Checking a read-only source's closed rows, block by block of ids.

A closed row of another database's table is not re-read by updates: nothing
there tells collectbus that it was deleted, re-used (SQLite hands the highest
id out again once its row is gone) or edited against the contract that closed
rows are final. So the aggregate records, per block of ``2 ** CHECK_BLOCK_BITS``
ids, the count, the sum of ids and the sum of a check term
(:meth:`~collectbus.aggregate.sql.AggregateSql.term`) of the closed rows it
counted. Each update adjusts those digests by the rows it closed itself (new
rows, completed open rows, rows leaving the age window), then compares some
blocks with the source, in the same snapshot, with one range scan of the
primary key each: the newest block always (where deletes of the newest rows
and id re-use happen), and a rotating sweep of ``verify_rows`` ids. A table
that small fits in one update: every update then compares every block, and
the aggregate is *verified*. A block that differs means a change the
incremental path could not see: the engine repairs it with a full refresh.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Connection

import collectbus.aggregate.driver as driver
from collectbus.aggregate.sql import BELOW_ALL, CHECK_BLOCK_BITS, AggregateSql

Digest = tuple[int, int, int]
BLOCK_IDS = 1 << CHECK_BLOCK_BITS
ZERO: Digest = (0, 0, 0)


def block_of(row_id: int) -> int:
    return row_id >> CHECK_BLOCK_BITS


def read_digests(conn: Connection, sql: AggregateSql, lo: int, hi: int) -> dict[int, Digest]:
    """The source's digests of the closed rows with ``lo < id <= hi``."""
    if hi <= lo:
        return {}
    found = driver.rows(conn, sql.block_digests(), {"lo": lo, "hi": hi})
    return {int(b): (int(n), int(s), int(t)) for b, n, s, t in found}


@dataclass(slots=True)
class Adjustments:
    """The closed rows an update adds to the recorded digests."""

    added: dict[int, list[int]] = field(default_factory=dict)

    def close(self, row_id: int, term: object) -> None:
        a = self.added.setdefault(block_of(row_id), [0, 0, 0])
        a[0] += 1
        a[1] += row_id
        a[2] += int(str(term))

    def add(self, digests: dict[int, Digest]) -> None:
        for b, (n, s, t) in digests.items():
            a = self.added.setdefault(b, [0, 0, 0])
            a[0] += n
            a[1] += s
            a[2] += t

    def applied(self, recorded: dict[int, Digest]) -> dict[int, Digest]:
        """The digests of the blocks adjusted, after the adjustment."""
        out: dict[int, Digest] = {}
        for b, (n, s, t) in self.added.items():
            rn, rs, rt = recorded.get(b, ZERO)
            out[b] = (rn + n, rs + s, rt + t)
        return out


@dataclass(frozen=True, slots=True)
class CheckResult:
    #: Blocks whose closed rows differ from what the aggregate counted.
    mismatched: list[int]
    #: Every block up to the newest was compared.
    complete: bool
    #: Where the next update's sweep starts.
    sweep: int


def check(
    conn: Connection,
    sql: AggregateSql,
    recorded: dict[int, Digest],
    *,
    closed_hi: int,
    sweep: int,
    verify_rows: int,
) -> CheckResult:
    """Compare the newest block and a sweep of blocks from ``sweep`` with
    ``recorded`` (adjusted already): closed rows up to ``closed_hi``."""
    newest = block_of(max(closed_hi, 0))
    count = -(-verify_rows // BLOCK_IDS)  # ceil
    start = sweep if 0 <= sweep < newest else 0
    end = min(start + count, newest)  # blocks [start, end) swept, then the newest
    complete = start == 0 and end >= newest
    intervals: list[tuple[int, int]] = []  # (first block, last block) compared
    if end > start:
        intervals.append((start, end - 1))
    intervals.append((newest, newest))
    if intervals[0][1] + 1 >= newest:  # adjacent: one scan
        intervals = [(intervals[0][0], newest)]
    found: dict[int, Digest] = {}
    for first, last in intervals:
        lo = BELOW_ALL if first == 0 else first * BLOCK_IDS - 1
        found.update(read_digests(conn, sql, lo, min(closed_hi, (last + 1) * BLOCK_IDS - 1)))
    mismatched: set[int] = set()

    def compared(b: int) -> bool:
        if b > newest:  # past the closed rows: must be empty now
            return True
        return any((first == 0 or b >= first) and b <= last for first, last in intervals)

    for b in set(found) | {b for b in recorded if compared(b)}:
        if found.get(b, ZERO) != recorded.get(b, ZERO):
            mismatched.add(b)
    next_sweep = 0 if end >= newest else end
    return CheckResult(sorted(mismatched), complete, next_sweep)


def all_digests(conn: Connection, sql: AggregateSql, closed_hi: int) -> dict[int, Digest]:
    """Every block's digest of the closed rows up to ``closed_hi`` (a rebuild)."""
    return read_digests(conn, sql, BELOW_ALL, closed_hi)
