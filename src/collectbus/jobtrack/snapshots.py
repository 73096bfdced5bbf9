"""Nodes, queues and the scheduler server as snapshot rows.

Queues and the server are few: every record is one row of ``queue_snapshots``
or ``system_snapshots``. Nodes can be tens of thousands, and most of them do
not change between two collections, so a node is written when its state, its
allocation, its jobs or its comment changed, and otherwise once every
:data:`NODE_KEYFRAME_NS` (1 h), so that any hour of ``node_snapshots`` knows
every node. Its state at a time is its newest row at or before that time.

What was last written of each node is kept in memory only: after a restart,
each node is written once more.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from collectbus.records import NodeRecord, QueueRecord, SystemRecord
from collectbus.store.bulk import RowTuple
from collectbus.store.jobrows import LONG_TEXT_LIMIT, RAW_LIMIT, TEXT_LIMIT, clean_text
from collectbus.store.snapshots import NODE_KEYFRAME_NS
from collectbus.values import fit_int64

NodeKey = tuple[str, str]
#: What a node's change is judged on, and the ``observed_ns`` of its last row.
NodeSeen = tuple[tuple[object, ...], int]


def _text(value: str | None, limit: int = TEXT_LIMIT) -> str | None:
    return None if value is None else clean_text(value, limit)[0]


def _join(values: tuple[str, ...]) -> str | None:
    return _text(",".join(values), LONG_TEXT_LIMIT) if values else None


def _counts(pairs: tuple[tuple[str, int], ...]) -> str:
    return json.dumps(dict(pairs), separators=(",", ":"))


@dataclass
class SnapshotRows:
    """The snapshot rows of one collection, and the node memory they replace."""

    nodes: list[RowTuple] = field(default_factory=list)
    queues: list[RowTuple] = field(default_factory=list)
    systems: list[RowTuple] = field(default_factory=list)
    seen: dict[NodeKey, NodeSeen] = field(default_factory=dict)


def queue_row(r: QueueRecord) -> RowTuple:
    """The ``queue_snapshots`` row of ``r``."""
    return (
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


def system_row(r: SystemRecord) -> RowTuple:
    """The ``system_snapshots`` row of ``r``."""
    return (
        _text(r.cluster),
        _text(r.scheduler),
        _text(r.server),
        r.observed_ns,
        _text(r.server_state),
        fit_int64(r.jobs_total),
        _counts(r.state_counts),
        _text(r.raw_json, RAW_LIMIT),
    )


class NodeMemory:
    """What was last written of each node, to write a node only when it is due."""

    def __init__(self) -> None:
        self._nodes: dict[NodeKey, NodeSeen] = {}

    def rows(self, records: Iterable[NodeRecord | QueueRecord | SystemRecord]) -> SnapshotRows:
        """The rows of ``records`` that are due; the memory is left as it is
        until :meth:`commit`."""
        out = SnapshotRows()
        for r in records:
            if isinstance(r, NodeRecord):
                row = self._node_row(r, out.seen)
                if row is not None:
                    out.nodes.append(row)
            elif isinstance(r, QueueRecord):
                out.queues.append(queue_row(r))
            else:
                out.systems.append(system_row(r))
        return out

    def commit(self, rows: SnapshotRows) -> None:
        """Remember the nodes of ``rows``: they were written."""
        self._nodes.update(rows.seen)

    def forget(self) -> None:
        self._nodes.clear()

    def _node_row(self, r: NodeRecord, seen: dict[NodeKey, NodeSeen]) -> RowTuple | None:
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
        last = seen.get(key) or self._nodes.get(key)
        if last is not None and last[0] == judged and r.observed_ns - last[1] < NODE_KEYFRAME_NS:
            return None
        seen[key] = (judged, r.observed_ns)
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
