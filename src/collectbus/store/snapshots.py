"""The snapshot tables of nodes, queues and the scheduler server.

Their rows are built by the job tracker (:mod:`collectbus.jobtrack.snapshots`),
which also decides which node rows are due; the store writes them.

A node is written when it changed, and otherwise once every
:data:`NODE_KEYFRAME_NS` (1 h), so that any hour of ``node_snapshots`` knows
every node: its state at a time is its newest row at or before that time.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection

from collectbus.store.bulk import RowTuple, bulk_insert

#: The longest a node goes without a row (readers look back this far).
NODE_KEYFRAME_NS = 3600 * 1_000_000_000

NODE_COLUMNS = (
    "cluster",
    "scheduler",
    "node",
    "observed_ns",
    "state",
    "native_state",
    "partitions",
    "cpus_total",
    "cpus_allocated",
    "gpus_total",
    "gpus_allocated",
    "mem_total_bytes",
    "mem_allocated_bytes",
    "jobs",
    "comment",
    "raw_json",
)
QUEUE_COLUMNS = (
    "cluster",
    "scheduler",
    "queue",
    "observed_ns",
    "enabled",
    "started",
    "jobs_total",
    "jobs_queued",
    "jobs_running",
    "jobs_held",
    "state_counts",
    "raw_json",
)
SYSTEM_COLUMNS = (
    "cluster",
    "scheduler",
    "server",
    "observed_ns",
    "server_state",
    "jobs_total",
    "state_counts",
    "raw_json",
)


def write_snapshot_rows(
    conn: Connection,
    nodes: Sequence[RowTuple],
    queues: Sequence[RowTuple],
    systems: Sequence[RowTuple],
    *,
    copy: bool,
) -> int:
    """Insert snapshot rows (tuples in the tables' column order); return how many."""
    bulk_insert(conn, "node_snapshots", NODE_COLUMNS, nodes, copy=copy)
    bulk_insert(conn, "queue_snapshots", QUEUE_COLUMNS, queues, copy=copy)
    bulk_insert(conn, "system_snapshots", SYSTEM_COLUMNS, systems, copy=copy)
    return len(nodes) + len(queues) + len(systems)
