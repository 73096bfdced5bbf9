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
primary key each: the newest blocks always (where deletes of the newest rows
and id re-use happen), and a rotating sweep of ``verify_rows`` ids. A table
that small fits in one update: every update then compares every block, and
the aggregate is *verified*. Otherwise a pass of the sweep over every block
takes several updates: the checkpoint keeps when the last complete pass
began (``checked_ns``), before which every change of a closed row is in the
totals. A block that differs means a change the incremental path could not
see: the engine repairs it with a full refresh. Not a recount of the block
alone: what a closed row contributed is not kept (only the ledger's open
rows are), so the block's old share of the totals, sketches included,
cannot be taken out by itself.
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
    #: This check began a pass of the sweep over every block (from block 0).
    began: bool = False
    #: This check ended a pass: every block was compared since it began.
    ended: bool = False


@dataclass(frozen=True, slots=True)
class SweepPlan:
    """The blocks one update compares: ``swept`` (first and last block of
    the sweep, if any) and every block from ``newest`` on."""

    swept: tuple[int, int] | None
    newest: int
    #: The sweep's blocks are ``[start, end)``.
    start: int
    end: int

    @property
    def ends_pass(self) -> bool:
        return self.end >= self.newest

    @property
    def complete(self) -> bool:
        return self.start == 0 and self.ends_pass

    def covers(self, block: int) -> bool:
        if block >= self.newest:
            return True
        if self.swept is None:
            return False
        first, last = self.swept
        return (first == 0 or block >= first) and block <= last

    def swept_ids(self) -> tuple[int, int] | None:
        """The ids ``(lo, hi]`` of the sweep's blocks (None: no sweep)."""
        if self.swept is None:
            return None
        first, last = self.swept
        return _block_lo(first), (last + 1) * BLOCK_IDS - 1

    def newest_lo(self) -> int:
        """The ids past this bound are in the newest blocks."""
        return _block_lo(self.newest)

    def result(self, mismatched: list[int]) -> CheckResult:
        return CheckResult(
            mismatched,
            self.complete,
            0 if self.ends_pass else self.end,
            began=self.start == 0 and (self.swept is not None or self.ends_pass),
            ended=self.ends_pass,
        )


def _block_lo(block: int) -> int:
    """The bound below a block's ids (below every id for block 0)."""
    return BELOW_ALL if block == 0 else block * BLOCK_IDS - 1


def plan_sweep(sweep: int, newest: int, verify_rows: int) -> SweepPlan:
    """The blocks an update compares: the newest (``newest`` and after) and
    ``verify_rows`` ids of the sweep from block ``sweep``, wrapping to 0."""
    count = -(-verify_rows // BLOCK_IDS)  # ceil
    start = sweep if 0 <= sweep < newest else 0
    end = min(start + count, newest)  # blocks [start, end) swept
    swept = (start, end - 1) if end > start else None
    return SweepPlan(swept, newest, start, end)


def compare(found: dict[int, Digest], recorded: dict[int, Digest], plan: SweepPlan) -> list[int]:
    """The blocks the plan covers whose digest in the source (``found``)
    differs from the one recorded (adjusted by this update already)."""
    blocks = set(found) | {b for b in recorded if plan.covers(b)}
    return sorted(b for b in blocks if found.get(b, ZERO) != recorded.get(b, ZERO))


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
    plan = plan_sweep(sweep, block_of(max(closed_hi, 0)), verify_rows)
    swept = plan.swept_ids()
    found: dict[int, Digest] = {}
    if swept is not None and swept[1] + 1 >= plan.newest_lo():  # adjacent: one scan
        found.update(read_digests(conn, sql, swept[0], closed_hi))
    else:
        if swept is not None:
            found.update(read_digests(conn, sql, *swept))
        found.update(read_digests(conn, sql, plan.newest_lo(), closed_hi))
    return plan.result(compare(found, recorded, plan))


def all_digests(conn: Connection, sql: AggregateSql, closed_hi: int) -> dict[int, Digest]:
    """Every block's digest of the closed rows up to ``closed_hi`` (a rebuild)."""
    return read_digests(conn, sql, BELOW_ALL, closed_hi)
