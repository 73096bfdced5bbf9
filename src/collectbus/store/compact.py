"""Compaction: old wide-table rows become one chunk per host, table and hour.

Only whole hours are compacted: an hour is taken once all of it is older than
the cutoff (``now - compact_after``), so each hour is normally encoded once,
at most about an hour after ``compact_after`` has passed.

Each (host, table, hour) is one transaction, so the SQLite write lock is held
for milliseconds and collectors are not kept waiting. The transaction deletes
the rows with ``DELETE ... RETURNING`` and encodes exactly the rows it
deleted, so a row written concurrently is either in the chunk or still in the
wide table, never lost and never in both.

A late row, written after its hour was compacted, is compacted on the next run
by **merging**: the hour's existing chunk is decoded, joined with the late
rows, re-encoded and replaced, in the same transaction. An hour thus keeps a
single chunk, which compresses better than several small ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import Connection, delete, func, insert, select

from collectbus.errors import StoreError
from collectbus.store.chunks import ENCODING_VERSION, ChunkFormatError, decode_chunk, encode_chunk
from collectbus.store.hostcolumns import concat, conform, rows_to_columns, sort_key, take
from collectbus.store.hostlayout import HOUR_NS
from collectbus.store.schema import WIDE_TABLES, WideTable, host_chunks

# PostgreSQL advisory lock keys (pg_advisory_xact_lock(int4, int4)): the first
# says "compacting this table", the second is the host id. Two compactors on
# one database then take turns per host and table.
_LOCK_BASE = 0x636F0000
_LOCK_KEYS = {name: _LOCK_BASE + i for i, name in enumerate(WIDE_TABLES)}


@dataclass(frozen=True, slots=True)
class CompactStats:
    """What one compaction did."""

    #: Rows older than this (an hour boundary) were eligible.
    cutoff_ns: int
    #: Chunks written, of which ``merged`` replaced an existing chunk of their hour.
    chunks: int = 0
    merged: int = 0
    #: Wide-table rows moved into chunks, and the compressed bytes they took.
    rows: int = 0
    payload_bytes: int = 0

    def __add__(self, other: CompactStats) -> CompactStats:
        return CompactStats(
            cutoff_ns=max(self.cutoff_ns, other.cutoff_ns),
            chunks=self.chunks + other.chunks,
            merged=self.merged + other.merged,
            rows=self.rows + other.rows,
            payload_bytes=self.payload_bytes + other.payload_bytes,
        )


def hour_cutoff(now_ns: int, older_than_s: float) -> int:
    """The start of the hour holding ``now - older_than``: rows before it are compacted."""
    cutoff = now_ns - round(older_than_s * 1_000_000_000)
    return cutoff - cutoff % HOUR_NS


def pending(conn: Connection, wide: WideTable, cutoff_ns: int) -> list[tuple[int, int]]:
    """(host_id, hour_start_ns) of every hour before the cutoff with rows left."""
    t = wide.table
    hour = (t.c.time_ns // HOUR_NS).label("hour")
    query = (
        select(t.c.host_id, hour)
        .where(t.c.time_ns < cutoff_ns)
        .group_by(t.c.host_id, hour)
        .order_by(t.c.host_id, hour)
    )
    return [(host_id, int(h) * HOUR_NS) for host_id, h in conn.execute(query)]


def compact_hour(conn: Connection, wide: WideTable, host_id: int, hour_ns: int) -> CompactStats:
    """Move one host's rows of one hour into a chunk, inside the caller's transaction."""
    if conn.dialect.name == "postgresql":
        conn.execute(select(func.pg_advisory_xact_lock(_LOCK_KEYS[wide.name], host_id)))
    t = wide.table
    deleted = conn.execute(
        delete(t)
        .where(t.c.host_id == host_id, t.c.time_ns >= hour_ns, t.c.time_ns < hour_ns + HOUR_NS)
        .returning(t.c.time_ns, *(t.c[c] for c in wide.columns))
    ).all()
    if not deleted:
        return CompactStats(cutoff_ns=0)
    parts = [rows_to_columns(wide, deleted)]
    hc = host_chunks.c
    same_hour = (hc.host_id == host_id, hc.source == wide.name, hc.hour_start_ns == hour_ns)
    old = conn.execute(select(hc.id, hc.encoding, hc.payload).where(*same_hour)).all()
    for chunk_id, encoding, payload in old:
        try:
            parts.append(conform(wide, decode_chunk(payload, encoding)))
        except ChunkFormatError as err:
            raise StoreError(f"{wide.name} chunk {chunk_id}: {err}") from err
    if old:
        conn.execute(delete(host_chunks).where(hc.id.in_([row[0] for row in old])))
    columns = concat(wide, parts)
    # Rows in (device, time) order: each column is then a run of one series
    # after another, whose deltas are small.
    keys = [columns["time_ns"]]
    if wide.key is not None:
        keys.append(sort_key(np.ma.getdata(columns[wide.key])))
    columns = take(columns, np.lexsort(keys))
    payload = encode_chunk(columns)
    time_ns = columns["time_ns"]
    conn.execute(
        insert(host_chunks).values(
            host_id=host_id,
            source=wide.name,
            hour_start_ns=hour_ns,
            first_ns=int(time_ns.min()),
            last_ns=int(time_ns.max()),
            n_rows=len(time_ns),
            encoding=ENCODING_VERSION,
            payload=payload,
        )
    )
    return CompactStats(
        cutoff_ns=0, chunks=1, merged=1 if old else 0, rows=len(deleted), payload_bytes=len(payload)
    )
