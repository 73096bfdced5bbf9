"""Checkpoints, totals, the change log and the ledger, in the collectbus store.

One update of one aggregate writes, in ONE transaction: the changed groups'
totals, the deltas of their sketches, the checkpoint (last id, pending ids,
updated watermark), the change log rows it consumed and the ledger rows it
changed. A crash before the commit leaves everything as it was, so no row is
lost or counted twice.

How a group's rows are laid out is :mod:`~collectbus.aggregate.parts`.

The checkpoint carries a ``version``. A write only succeeds if the version is
the one the update read, so two updaters of the same aggregate cannot both
apply the same rows: the second one fails with :class:`CheckpointConflict`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from sqlalchemy import Connection, bindparam, delete, insert, select
from sqlalchemy.exc import DBAPIError

import collectbus.aggregate.driver as driver
import collectbus.pendingids as pendingids
from collectbus.aggregate.parts import CHUNK, delete_groups, part_statements
from collectbus.aggregate.state import (
    Contribution,
    GroupState,
    key_json,
)
from collectbus.errors import StoreError
from collectbus.pendingids import Pending
from collectbus.store.schema import (
    aggregate_blocks,
    aggregate_changes,
    aggregate_ledger,
    aggregate_parts,
    checkpoints,
)


class CheckpointConflict(StoreError):
    """Another updater moved the checkpoint since this update read it."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    name: str
    spec: str
    last_id: int = 0
    #: Id ranges ``[lo, hi, first_seen_ns]`` below ``last_id`` not yet visible
    #: (PostgreSQL hands out ids before commit; :mod:`collectbus.pendingids`).
    pending: tuple[Pending, ...] = ()
    #: The ``updated_column`` watermark, for sources that have one.
    mark: int | float | str | None = None
    version: int = 0
    runs: int = 0
    mismatches: int = 0
    updated_ns: int = 0
    refreshed_ns: int | None = None
    #: Read-only sources (:mod:`~collectbus.aggregate.tail`), else None: the
    #: ledger holds every counted row above ``floor`` that is open by age.
    floor: int | None = None
    #: The next block of ids the sweep checks (None: not a read-only source).
    sweep: int | None = None
    #: When an update or refresh last compared every counted row with the source.
    verified_ns: int | None = None
    #: When a check or refresh last found and repaired a difference.
    repaired_ns: int | None = None
    #: The check term the block digests were summed with
    #: (:data:`~collectbus.aggregate.sql.TERM_VERSION`; None: the first).
    term: int | None = None
    #: When the sweep's current pass over every block began.
    pass_ns: int | None = None
    #: When the last complete pass of the sweep began: every block of closed
    #: rows was compared with the source since, and found equal (or repaired).
    checked_ns: int | None = None

    def state_json(self) -> str:
        state: dict[str, object] = {
            "pending": [list(p) for p in self.pending],
            "mark": self.mark,
        }
        if self.sweep is not None:
            state.update(
                floor=self.floor,
                sweep=self.sweep,
                verified_ns=self.verified_ns,
                repaired_ns=self.repaired_ns,
                term=self.term,
                pass_ns=self.pass_ns,
                checked_ns=self.checked_ns,
            )
        return json.dumps(state)

    def counted(self, row_id: int) -> bool:
        """True when the row's current contribution is in the totals."""
        return pendingids.counted(self.last_id, self.pending, row_id)


@dataclass(slots=True)
class Changes:
    """What one update writes, besides the checkpoint."""

    groups: dict[str, GroupState] = field(default_factory=dict)
    #: Replace every group of the aggregate (full refresh, backfill).
    replace_all: bool = False
    consumed: list[int] = field(default_factory=list)
    #: Ledger rows written: an open row's contribution (None: it passes no
    #: filter, yet can still change).
    ledger_put: dict[int, Contribution | None] = field(default_factory=dict)
    ledger_drop: list[int] = field(default_factory=list)
    #: Drop ledger rows with an id at or below this (closed rows).
    ledger_prune_below: int | None = None
    #: Replace the whole ledger with ``ledger_put`` (a rebuild, a refresh).
    ledger_replace: bool = False
    #: Block digests written (:mod:`~collectbus.aggregate.blocks`): block to
    #: (rows, sum of ids, sum of terms); all of them with ``blocks_replace``.
    block_puts: dict[int, tuple[int, int, int]] = field(default_factory=dict)
    blocks_replace: bool = False
    #: Per group, what this update changed in its sketches, as stored
    #: (:func:`~collectbus.aggregate.state.sketch_deltas`); none: unchanged.
    sketch_deltas: dict[str, str] = field(default_factory=dict)
    #: Groups written as one base row, their other rows deleted (every group
    #: with ``replace_all``).
    folded: set[str] = field(default_factory=set)


_LOAD_CHECKPOINT = (
    "SELECT spec, last_id, state, version, runs, mismatches, updated_ns, refreshed_ns"
    " FROM checkpoints WHERE name = :name"
)
_MOVE_CHECKPOINT = (
    "UPDATE checkpoints SET spec = :spec, last_id = :last_id, state = :state,"
    " version = :version, runs = :runs, mismatches = :mismatches,"
    " updated_ns = :updated_ns, refreshed_ns = :refreshed_ns"
    " WHERE name = :name AND version = :before"
)
#: PostgreSQL: the move, failing the transaction (a division by zero) unless
#: the checkpoint was at ``:before``: the writes sent after it in the same
#: round trip, and the COMMIT, then do nothing.
_MOVE_CHECKPOINT_OR_FAIL = (
    f"WITH collectbus_moved AS ({_MOVE_CHECKPOINT} RETURNING 1)"
    " SELECT 1 / count(*) FROM collectbus_moved"
)
#: The SQLSTATE of that failure (division_by_zero).
_MOVED_MEANWHILE = "22012"
_LOAD_CHANGES = "SELECT seq, row_id, old FROM aggregate_changes WHERE name = :name ORDER BY seq"


@contextmanager
def concurrent_update(name: str) -> Iterator[None]:
    """A PostgreSQL serialization failure in the block (another updater wrote
    the same rows since this transaction's snapshot), or a checkpoint found
    moved by :func:`save`, as a CheckpointConflict."""
    try:
        yield
    except DBAPIError as err:
        if getattr(err.orig, "sqlstate", None) not in ("40001", _MOVED_MEANWHILE):
            raise
        raise CheckpointConflict(f"aggregate {name}: updated by another process meanwhile") from err


def load_checkpoint(conn: Connection, name: str) -> Checkpoint | None:
    return parse_checkpoint(name, driver.rows(conn, checkpoint_query(), {"name": name}))[0]


def checkpoint_query(probes: Sequence[str] = ()) -> str:
    """The statement reading a checkpoint (parameter ``:name``) and, in the
    same row, the value of each scalar query in ``probes`` (which may use
    ``:name``): one round trip, not several."""
    if not probes:
        return _LOAD_CHECKPOINT
    extra = "".join(f", ({p})" for p in probes)
    return _LOAD_CHECKPOINT.replace(" FROM checkpoints", f"{extra} FROM checkpoints", 1)


def parse_checkpoint(
    name: str, found: Sequence[Sequence[Any]]
) -> tuple[Checkpoint | None, list[object]]:
    """The checkpoint in the rows of :func:`checkpoint_query`, and its probes' values."""
    if not found:
        return None, []
    spec, last_id, state_text, version, runs, mismatches, updated_ns, refreshed_ns = found[0][:8]
    return _checkpoint(
        name, spec, last_id, state_text, version, runs, mismatches, updated_ns, refreshed_ns
    ), list(found[0][8:])


def _checkpoint(
    name: str,
    spec: str,
    last_id: int,
    state_text: str,
    version: int,
    runs: int,
    mismatches: int,
    updated_ns: int,
    refreshed_ns: int | None,
) -> Checkpoint:
    state = json.loads(state_text)
    return Checkpoint(
        floor=_int_or_none(state.get("floor")),
        sweep=_int_or_none(state.get("sweep")),
        verified_ns=_int_or_none(state.get("verified_ns")),
        repaired_ns=_int_or_none(state.get("repaired_ns")),
        term=_int_or_none(state.get("term")),
        pass_ns=_int_or_none(state.get("pass_ns")),
        checked_ns=_int_or_none(state.get("checked_ns")),
        name=name,
        spec=spec,
        last_id=int(last_id),
        pending=tuple((int(a), int(b), int(c)) for a, b, c in state.get("pending", [])),
        mark=state.get("mark"),
        version=int(version),
        runs=int(runs),
        mismatches=int(mismatches),
        updated_ns=int(updated_ns),
        refreshed_ns=None if refreshed_ns is None else int(refreshed_ns),
    )


def _int_or_none(value: object) -> int | None:
    return None if value is None else int(str(value))


def load_changes(conn: Connection, name: str) -> list[tuple[int, int, str]]:
    """Every logged change of the aggregate's source visible now: (seq, row id, old)."""
    return [
        (int(s), int(r), str(o)) for s, r, o in driver.rows(conn, _LOAD_CHANGES, {"name": name})
    ]


def _ledger_value(text: str) -> Contribution | None:
    return None if text == "null" else Contribution.from_json(text)


def load_ledger(
    conn: Connection, name: str, *, above: int | None = None, ids: Sequence[int] = ()
) -> dict[int, Contribution | None]:
    """Ledger rows with an id above ``above``, and those with the given ids
    (None: an open row that passes no filter)."""
    c = aggregate_ledger.c
    out: dict[int, Contribution | None] = {}
    base = select(c.row_id, c.contribution).where(c.name == name)
    if above is not None:
        for rid, text in conn.execute(base.where(c.row_id > above)):
            out[int(rid)] = _ledger_value(text)
    stmt = base.where(c.row_id.in_(bindparam("ids", expanding=True)))
    wanted = list(ids)
    for i in range(0, len(wanted), CHUNK):
        for rid, text in conn.execute(stmt, {"ids": wanted[i : i + CHUNK]}):
            out[int(rid)] = _ledger_value(text)
    return out


def load_blocks(conn: Connection, name: str) -> dict[int, tuple[int, int, int]]:
    """Every recorded block digest of an aggregate: block to (rows, id sum, term sum)."""
    c = aggregate_blocks.c
    stmt = select(c.block, c.rows, c.id_sum, c.term_sum).where(c.name == name)
    return {int(b): (int(n), int(s), int(t)) for b, n, s, t in conn.execute(stmt)}


_LZ4: dict[str, bool] = {}


def _lz4(conn: Connection) -> bool:
    """Whether the PostgreSQL server can compress TOAST with lz4 (built with it)."""
    url = str(conn.engine.url)
    if url not in _LZ4:
        found = driver.rows(
            conn,
            "SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression'"
            " AND 'lz4' = ANY(enumvals)",
            {},
        )
        _LZ4[url] = bool(found)
    return _LZ4[url]


def _settings(conn: Connection) -> dict[str, str]:
    """PostgreSQL: the settings of a transaction writing totals.

    An asynchronous commit: the checkpoint and the totals are in the one
    transaction, so a server crash can only lose both together, and the next
    update then reads the same rows again (exact, only later). It spares an
    fsync per update. Sketches make totals of a few KB, compressed into TOAST
    on every write: lz4 does it several times faster than the default pglz,
    where the server has it. And the statements of an update, the same every
    time but for a few ids, keep one generic plan: planning the grouped read of
    new rows anew each time costs a third of its run. The change log is a
    queue: every update deletes the rows it read, and until autovacuum comes
    by, their index entries stay. A bitmap scan visits them all, every time;
    an index scan marks each dead entry on its first visit and skips it after.
    """
    settings = {
        "synchronous_commit": "off",
        "plan_cache_mode": "force_generic_plan",
        "enable_bitmapscan": "off",
    }
    if _lz4(conn):
        settings["default_toast_compression"] = "lz4"
    return settings


def write_settings(conn: Connection) -> list[str]:
    """The settings (:func:`_settings`) for the current transaction alone, as
    expressions to select (one round trip with whatever else is read)."""
    return [f"set_config('{k}', '{v}', true)" for k, v in _settings(conn).items()]


#: SQLite: the WAL size (pages) at which a commit of the aggregator
#: checkpoints it, ten times the default: see :func:`session_settings`.
SQLITE_WAL_CHECKPOINT_PAGES = 10_000


def session_settings(conn: Connection) -> list[str]:
    """The statements setting up a connection that writes totals and nothing
    else (:class:`~collectbus.aggregate.sourcedb.HeldConnection`), once for its
    session rather than in every transaction.

    PostgreSQL: the write settings (:func:`_settings`). SQLite: the commit
    that finds the WAL past 1,000 pages copies it into the database (and
    syncs it), and whichever connection commits then pays for it; the rows
    the store's writers insert make most of the WAL, so the aggregator leaves
    that work to them and checkpoints only a WAL grown ten times as large
    (no writer about)."""
    if conn.dialect.name != "postgresql":
        return [f"PRAGMA wal_autocheckpoint = {SQLITE_WAL_CHECKPOINT_PAGES}"]
    return [f"SET {k} = {v}" for k, v in _settings(conn).items()]


def save(
    conn: Connection,
    dialect: Literal["sqlite", "postgresql"],
    measures: Sequence[str],
    before: Checkpoint | None,
    after: Checkpoint,
    changes: Changes,
    *,
    tuned: bool = False,
    commit: bool = False,
) -> Checkpoint:
    """Write the checkpoint and the changes in the caller's transaction
    (``tuned``: the caller already applied :func:`write_settings`).

    ``commit``: in PostgreSQL, and when it is the transaction's last work,
    commit it in the round trip of the writes. The checkpoint's move is the
    first write, and fails the transaction unless the checkpoint was still
    at ``before`` (so does a concurrent move, in a REPEATABLE READ
    transaction): the other writes then do nothing, and the COMMIT rolls
    back. In SQLite the move runs first, alone: the others run only if it
    moved the checkpoint.

    Raises :class:`CheckpointConflict` if the checkpoint moved since ``before``
    was read; the caller's transaction then rolls back.
    """
    name = after.name
    if dialect == "postgresql" and not tuned:
        driver.rows(conn, f"SELECT {', '.join(write_settings(conn))}", {})
    # A new checkpoint's version comes from the clock: an aggregate reset and
    # rebuilt by another process never repeats a version that this one
    # cached totals for.
    saved = replace(after, version=before.version + 1 if before else time.time_ns())
    values = {
        "spec": saved.spec,
        "last_id": saved.last_id,
        "state": saved.state_json(),
        "version": saved.version,
        "runs": saved.runs,
        "mismatches": saved.mismatches,
        "updated_ns": saved.updated_ns,
        "refreshed_ns": saved.refreshed_ns,
    }
    c = checkpoints.c
    if before is None:
        exists = conn.execute(select(c.version).where(c.name == name)).first()
        if exists is not None:
            raise CheckpointConflict(f"aggregate {name}: updated by another process meanwhile")
        conn.execute(insert(checkpoints).values(name=name, **values))
    if changes.replace_all:
        conn.execute(delete(aggregate_parts).where(aggregate_parts.c.name == name))
    delete_groups(conn, name, changes.groups)
    # The checkpoint's move, the groups' rows and the consumed changes: one
    # round trip in PostgreSQL.
    statements: list[tuple[str, Sequence[Mapping[str, object]]]] = []
    if before is not None:
        move = {**values, "name": name, "before": before.version}
        if dialect == "postgresql":
            statements.append((_MOVE_CHECKPOINT_OR_FAIL, [move]))
        elif driver.execute(conn, _MOVE_CHECKPOINT, move) != 1:
            raise CheckpointConflict(f"aggregate {name}: updated by another process meanwhile")
    parts = part_statements(
        name,
        measures,
        saved.version,
        changes.groups,
        changes.sketch_deltas,
        folded=set(changes.groups) if changes.replace_all else changes.folded,
        replaced=changes.replace_all,
    )
    statements += _arrays(dialect, parts)
    if changes.consumed and dialect == "postgresql":
        # One statement text whatever the numbers: planned once, not per update.
        seqs = [int(seq) for seq in changes.consumed]
        statements.append(
            ("DELETE FROM aggregate_changes WHERE seq = ANY(:seqs)", [{"seqs": seqs}])
        )
    else:
        for i in range(0, len(changes.consumed), CHUNK):
            # Sequence numbers read from the database: written in, not bound.
            listed = ", ".join(str(int(seq)) for seq in changes.consumed[i : i + CHUNK])
            statements.append((f"DELETE FROM aggregate_changes WHERE seq IN ({listed})", [{}]))
    statements += _ledger_statements(dialect, name, changes)
    driver.execute_all(conn, statements, commit=commit)
    return saved


Statements = list[tuple[str, Sequence[Mapping[str, object]]]]


def _ledger_statements(
    dialect: Literal["sqlite", "postgresql"], name: str, changes: Changes
) -> Statements:
    """The writes of the ledger and the block digests, to run with the
    checkpoint's: each a single statement whatever the number of rows (ids
    and values as arrays in PostgreSQL, a JSON array of ids in SQLite)."""
    out: Statements = []
    key = {"name": name}
    if changes.blocks_replace:
        out.append(("DELETE FROM aggregate_blocks WHERE name = :name", [key]))
    elif changes.block_puts:
        blocks = _ids_in(dialect, "block")
        out.append(
            (f"DELETE FROM aggregate_blocks WHERE name = :name AND {blocks}",
             [{**key, "ids": driver.id_list(dialect, changes.block_puts)}])
        )  # fmt: skip
    puts = [(b, d) for b, d in changes.block_puts.items() if d[0]]
    columns = ("block", "rows", "id_sum", "term_sum")
    out += _insert(dialect, "aggregate_blocks", [(c, "bigint") for c in columns], name,
                   [dict(zip(columns, (b, *d), strict=True)) for b, d in puts])  # fmt: skip
    if changes.ledger_replace:
        out.append(("DELETE FROM aggregate_ledger WHERE name = :name", [key]))
    drop = [] if changes.ledger_replace else [*changes.ledger_drop, *changes.ledger_put]
    if drop:
        rows = _ids_in(dialect, "row_id")
        out.append(
            (f"DELETE FROM aggregate_ledger WHERE name = :name AND {rows}",
             [{**key, "ids": driver.id_list(dialect, drop)}])
        )  # fmt: skip
    below = changes.ledger_prune_below
    if below is not None:
        prune = "DELETE FROM aggregate_ledger WHERE name = :name AND row_id <= :below"
        out.append((prune, [{**key, "below": below}]))
    ledger = [
        {"row_id": rid, "contribution": "null" if c is None else c.to_json()}
        for rid, c in changes.ledger_put.items()
        if below is None or rid > below
    ]
    typed = (("row_id", "bigint"), ("contribution", "text"))
    out += _insert(dialect, "aggregate_ledger", typed, name, ledger)
    return out


#: The columns of ``aggregate_parts`` an update inserts, with their PostgreSQL types.
_PART_COLUMNS = (
    ("group_key", "text"),
    ("part", "bigint"),
    ("count", "bigint"),
    ("errors", "bigint"),
    ("measures", "text"),
    ("sketches", "text"),
)


def _arrays(dialect: Literal["sqlite", "postgresql"], parts: Statements) -> Statements:
    """:func:`~collectbus.aggregate.parts.part_statements` with, in
    PostgreSQL, the rows of the groups as one insert over arrays (:func:`_insert`)
    rather than a statement per group."""
    if dialect != "postgresql":
        return parts
    out: Statements = []
    for query, params in parts:
        if params and query.startswith("INSERT INTO aggregate_parts"):
            out += _insert(
                dialect, "aggregate_parts", _PART_COLUMNS, str(params[0]["name"]), params
            )
        else:
            out.append((query, params))
    return out


def _ids_in(dialect: Literal["sqlite", "postgresql"], column: str) -> str:
    """``column`` in the ids of the parameter ``:ids`` (:func:`_id_list`)."""
    if dialect == "postgresql":
        return f"{column} = ANY(CAST(:ids AS BIGINT[]))"
    return f"{column} IN (SELECT value FROM json_each(:ids))"


def _insert(
    dialect: Literal["sqlite", "postgresql"],
    table: str,
    typed: Sequence[tuple[str, str]],
    name: str,
    rows: Sequence[Mapping[str, object]],
) -> Statements:
    """Inserting rows of an aggregate, ``typed`` its columns with their
    PostgreSQL types: there, one statement over arrays (a statement per row
    costs a round trip's work each), each sent as the text of an array."""
    if not rows:
        return []
    columns = [c for c, _ in typed]
    if dialect != "postgresql":
        cols = ", ".join(["name", *columns])
        marks = ", ".join(f":{c}" for c in ["name", *columns])
        return [(f"INSERT INTO {table} ({cols}) VALUES ({marks})",
                 [{"name": name, **r} for r in rows])]  # fmt: skip
    arrays = ", ".join(f"CAST(:{c} AS {kind}[])" for c, kind in typed)
    params = {"name": name, **{c: driver.pg_array([r[c] for r in rows]) for c in columns}}
    listed = ", ".join(f'"{c}"' for c in columns)
    sql = f"INSERT INTO {table} (name, {listed}) SELECT :name, * FROM unnest({arrays})"
    return [(sql, [params])]


def forget(conn: Connection, name: str) -> None:
    """Delete every trace of an aggregate: totals, checkpoint, changes, ledger."""
    conn.execute(delete(aggregate_parts).where(aggregate_parts.c.name == name))
    conn.execute(delete(checkpoints).where(checkpoints.c.name == name))
    conn.execute(delete(aggregate_changes).where(aggregate_changes.c.name == name))
    conn.execute(delete(aggregate_ledger).where(aggregate_ledger.c.name == name))
    conn.execute(delete(aggregate_blocks).where(aggregate_blocks.c.name == name))


__all__ = [
    "Changes",
    "Checkpoint",
    "CheckpointConflict",
    "checkpoint_query",
    "concurrent_update",
    "forget",
    "key_json",
    "load_blocks",
    "load_changes",
    "load_checkpoint",
    "load_ledger",
    "parse_checkpoint",
    "save",
    "session_settings",
    "write_settings",
]
