"""Snapshots of nodes, queues and the scheduler server.

Queues and the server are few: every record is one row of ``queue_snapshots``
or ``system_snapshots``. Nodes can be tens of thousands, and most of them do
not change between two collections, so a node is written when its state, its
allocation, its jobs or its comment changed, and otherwise once every
:data:`NODE_KEYFRAME_NS` (1 h), so that any hour of ``node_snapshots`` knows
every node. Its state at a time is its newest row at or before that time.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from sqlalchemy import Connection

from collectbus.records import NodeRecord, QueueRecord, SystemRecord
from collectbus.store.bulk import RowTuple, bulk_insert
from collectbus.store.jobrows import LONG_TEXT_LIMIT, RAW_LIMIT, TEXT_LIMIT, clean_text
from collectbus.values import fit_int64

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


def _text(value: str | None, limit: int = TEXT_LIMIT) -> str | None:
    return None if value is None else clean_text(value, limit)[0]


def _join(values: tuple[str, ...]) -> str | None:
    return _text(",".join(values), LONG_TEXT_LIMIT) if values else None


def _counts(pairs: tuple[tuple[str, int], ...]) -> str:
    return json.dumps(dict(pairs), separators=(",", ":"))


class SnapshotWriter:
    """Writes node, queue and system records; remembers each node's last row."""

    def __init__(self) -> None:
        # (cluster, node) -> (what a change is judged on, observed_ns of the last row)
        self._nodes: dict[tuple[str, str], tuple[tuple[object, ...], int]] = {}

    def write(
        self,
        conn: Connection,
        records: Sequence[NodeRecord | QueueRecord | SystemRecord],
        *,
        copy: bool,
    ) -> int:
        """Insert the rows of ``records`` that are due; return how many.

        The node memory is updated at once: if the transaction rolls back,
        the next collection writes those nodes as changes again, which only
        costs rows.
        """
        nodes: list[RowTuple] = []
        queues: list[RowTuple] = []
        systems: list[RowTuple] = []
        for r in records:
            if isinstance(r, NodeRecord):
                row = self._node_row(r)
                if row is not None:
                    nodes.append(row)
            elif isinstance(r, QueueRecord):
                queues.append(
                    (
                        _text(r.cluster),
                        _text(r.scheduler),
                        _text(r.queue),
                        r.observed_ns,
                        r.enabled,
                        r.started,
                        fit_int64(r.jobs_total),
                        fit_int64(r.jobs_queued),
                        fit_int64(r.jobs_running),
                        fit_int64(r.jobs_held),
                        _counts(r.state_counts),
                        _text(r.raw_json, RAW_LIMIT),
                    )
                )
            else:
                systems.append(
                    (
                        _text(r.cluster),
                        _text(r.scheduler),
                        _text(r.server),
                        r.observed_ns,
                        _text(r.server_state),
                        fit_int64(r.jobs_total),
                        _counts(r.state_counts),
                        _text(r.raw_json, RAW_LIMIT),
                    )
                )
        bulk_insert(conn, "node_snapshots", NODE_COLUMNS, nodes, copy=copy)
        bulk_insert(conn, "queue_snapshots", QUEUE_COLUMNS, queues, copy=copy)
        bulk_insert(conn, "system_snapshots", SYSTEM_COLUMNS, systems, copy=copy)
        return len(nodes) + len(queues) + len(systems)

    def _node_row(self, r: NodeRecord) -> RowTuple | None:
        sizes = tuple(
            fit_int64(n)
            for n in (
                r.cpus_total,
                r.cpus_allocated,
                r.gpus_total,
                r.gpus_allocated,
                r.mem_total_bytes,
                r.mem_allocated_bytes,
            )
        )
        judged = (r.state, r.native_state, r.partitions, *sizes, r.jobs, r.comment)
        key = (r.cluster, r.node)
        last = self._nodes.get(key)
        if last is not None and last[0] == judged and r.observed_ns - last[1] < NODE_KEYFRAME_NS:
            return None
        self._nodes[key] = (judged, r.observed_ns)
        return (
            _text(r.cluster),
            _text(r.scheduler),
            _text(r.node),
            r.observed_ns,
            _text(r.state),
            _text(r.native_state),
            _join(r.partitions),
            *sizes,
            _join(r.jobs),
            _text(r.comment),
            _text(r.raw_json, RAW_LIMIT),
        )
