"""The store's tables, as SQLAlchemy Core ``Table`` objects.

Host samples live in two layers (docs/architecture.md, "The store layout"):

- **wide tables**, one per /proc source, whose columns are the fields of the
  matching row type in :mod:`collectbus.records` (or the key lists in
  :mod:`collectbus.procfields`), as :mod:`collectbus.store.hostlayout` lays
  them out. One row is one host, one tick and, where it applies, one
  device. Plain SQL and Grafana read them directly.
- **host_chunks**: the same rows once older than ``compact_after``, compressed
  per host, source table and hour by :mod:`collectbus.store.chunks`.

Recorded calls go to **calls**, one row per call (:mod:`collectbus.store.calls`).

Batch jobs go to **jobs** (one row per job, its current or final state) and
**job_history** (one row per change of a tracked field); nodes, queues and
the scheduler server to **node_snapshots**, **queue_snapshots** and
**system_snapshots** (:mod:`collectbus.store.jobtables`, written from the rows
of the job tracker, :mod:`collectbus.jobtrack`).

This module is built from the record layouts, so it is always the live
contract; the migrations in ``migrations/versions`` keep a frozen copy, and a
test checks that a migrated database matches these definitions.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
)

from collectbus.store.hostlayout import HOST_CHUNKS, HOSTS, WideLayout, wide_layouts

# Deterministic constraint names, so that migrations can refer to them.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

# SQLite only makes an INTEGER PRIMARY KEY an alias of the rowid (and so
# auto-incrementing); PostgreSQL gets a 64-bit identity.
BigId = BigInteger().with_variant(Integer(), "sqlite")

hosts = Table(
    HOSTS,
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", Text, nullable=False, unique=True),
    Column("first_seen_ns", BigInteger, nullable=False),
    Column("last_seen_ns", BigInteger, nullable=False),
)

collection_log = Table(
    "collection_log",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("source", Text, nullable=False),
    Column("host", Text, nullable=False),
    Column("started_ns", BigInteger, nullable=False),
    Column("duration_ns", BigInteger, nullable=False),
    Column("status", Text, nullable=False),
    Column("records", Integer, nullable=False),
    Column("error", Text, nullable=True),
    Column("stale", Boolean, nullable=False),
    Index(None, "started_ns"),
    # What the collection noted (CollectionEvent.details), a JSON object; see
    # collectbus.store.events.details_json.
    Column("details", Text, nullable=True),
)


@dataclass(frozen=True, slots=True)
class WideTable(WideLayout):
    """One wide table: its layout (:mod:`collectbus.store.hostlayout`) and its table."""

    table: Table


def _wide(layout: WideLayout) -> WideTable:
    sql_type = {"int": BigInteger, "float": Double, "text": Text}
    table = Table(
        layout.name,
        metadata,
        Column("host_id", Integer, ForeignKey("hosts.id"), nullable=False),
        Column("time_ns", BigInteger, nullable=False),
        *(
            Column(c, sql_type[k](), nullable=c in layout.nullable)
            for c, k in zip(layout.columns, layout.kinds, strict=True)
        ),
        # The only index: the recent layer holds about ``compact_after`` (1 h)
        # of rows, so a time-range scan filtered by host is all that reads and
        # compaction need, and new rows append at the right edge of this one
        # B-tree. A per-series (host, device) index would cost every insert
        # (docs/architecture.md, "The store layout").
        Index(None, "time_ns"),
    )
    return WideTable(layout.name, layout.key, layout.columns, layout.kinds, layout.nullable, table)


WIDE_TABLES: dict[str, WideTable] = {name: _wide(layout) for name, layout in wide_layouts().items()}

host_chunks = Table(
    HOST_CHUNKS,
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("host_id", Integer, ForeignKey("hosts.id"), nullable=False),
    Column("source", Text, nullable=False),  # the wide table's name
    Column("hour_start_ns", BigInteger, nullable=False),
    Column("first_ns", BigInteger, nullable=False),
    Column("last_ns", BigInteger, nullable=False),
    Column("n_rows", Integer, nullable=False),
    Column("encoding", Integer, nullable=False),  # chunks.ENCODING_VERSION
    Column("payload", LargeBinary, nullable=False),
    # Also the index that reads by host, source and time use.
    UniqueConstraint("host_id", "source", "hour_start_ns", "first_ns"),
)

calls = Table(
    "calls",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("host", Text, nullable=False),
    Column("pid", Integer, nullable=False),
    Column("thread_id", BigInteger, nullable=False),
    Column("handler", Text, nullable=False),
    Column("qualname", Text, nullable=False),
    Column("started_ns", BigInteger, nullable=False),
    Column("elapsed_ns", BigInteger, nullable=False),
    # NULL for a call that returned.
    Column("error_type", Text, nullable=True),
    Column("error_message", Text, nullable=True),
    Column("traceback", Text, nullable=True),
    # NULL unless the collector captured them (already truncated text).
    Column("args", Text, nullable=True),
    Column("result", Text, nullable=True),
    # Reads are by time window, and by handler within a window.
    Index(None, "started_ns"),
    Index(None, "handler", "started_ns"),
)

# One row per host and change of its inventory (collectors/host/inventory.py):
# the JSON document, stored only when it differs from the host's latest.
host_inventory = Table(
    "host_inventory",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("host_id", Integer, ForeignKey("hosts.id"), nullable=False),
    Column("time_ns", BigInteger, nullable=False),
    Column("document", Text, nullable=False),
    Index(None, "host_id", "time_ns"),
)

# ---------------------------------------------------------------- job usage
#
# What each batch job used on each node (collectors/jobusage), one row per job,
# host and tick: from the job's cgroup or summed over its processes
# (``source``). cpu_seconds, read_bytes and write_bytes are counters since the
# job began on that host; mem_bytes now, mem_peak_bytes the high-water mark.
# Reads select a job's rows by (cluster, job_id) and its window by time_ns
# (collectbus.store.jobusage). Migration 0015.

job_usage = Table(
    "job_usage",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("cluster", Text, nullable=False),
    Column("job_id", Text, nullable=False),
    Column("host", Text, nullable=False),
    Column("time_ns", BigInteger, nullable=False),
    Column("source", Text, nullable=False),  # cgroup or proctree
    Column("cpu_seconds", Double, nullable=True),
    Column("mem_bytes", BigInteger, nullable=True),
    Column("mem_peak_bytes", BigInteger, nullable=True),
    Column("read_bytes", BigInteger, nullable=True),
    Column("write_bytes", BigInteger, nullable=True),
    Column("processes", BigInteger, nullable=True),
    Index(None, "cluster", "job_id", "time_ns"),
    Index(None, "time_ns"),
)

# ---------------------------------------------------------------- scheduler
#
# Batch jobs, their changes, and snapshots of nodes, queues and the server
# (:mod:`collectbus.store.jobtables`, :mod:`collectbus.store.snapshots`). A job is
# keyed by (cluster, job_id, submit_ns): schedulers reuse ids. Lists
# (exec_hosts, partitions, jobs) are comma-joined text; state counts are JSON.

jobs = Table(
    "jobs",
    metadata,
    Column("cluster", Text, primary_key=True),
    Column("job_id", Text, primary_key=True),
    Column("submit_ns", BigInteger, primary_key=True),
    Column("scheduler", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("native_state", Text, nullable=False),
    Column("substate", Text, nullable=True),
    Column("name", Text, nullable=True),
    Column("username", Text, nullable=True),
    Column("account", Text, nullable=True),
    Column("queue", Text, nullable=True),
    Column("priority", BigInteger, nullable=True),
    Column("array_parent", Text, nullable=True),
    Column("exec_hosts", Text, nullable=True),
    Column("exec_vnode", Text, nullable=True),
    Column("nodes_requested", BigInteger, nullable=True),
    Column("cpus_requested", BigInteger, nullable=True),
    Column("gpus_requested", BigInteger, nullable=True),
    Column("mem_requested_bytes", BigInteger, nullable=True),
    Column("walltime_requested_seconds", BigInteger, nullable=True),
    Column("walltime_used_seconds", BigInteger, nullable=True),
    Column("cpu_used_seconds", BigInteger, nullable=True),
    Column("mem_used_bytes", BigInteger, nullable=True),
    Column("eligible_ns", BigInteger, nullable=True),
    Column("eligible_seconds", BigInteger, nullable=True),
    Column("start_ns", BigInteger, nullable=True),
    Column("end_ns", BigInteger, nullable=True),
    Column("exit_status", BigInteger, nullable=True),
    Column("exit_signal", BigInteger, nullable=True),
    Column("comment", Text, nullable=True),
    Column("first_seen_ns", BigInteger, nullable=False),
    Column("last_seen_ns", BigInteger, nullable=False),
    Column("raw_json", Text, nullable=False),
    # Reads by submit time (``collectbus jobs --since``); retention by last
    # sight; ``collectbus job ID`` without a cluster.
    Index(None, "submit_ns"),
    Index(None, "last_seen_ns"),
    Index(None, "job_id"),
)

job_history = Table(
    "job_history",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("cluster", Text, nullable=False),
    Column("job_id", Text, nullable=False),
    Column("submit_ns", BigInteger, nullable=False),
    Column("observed_ns", BigInteger, nullable=False),
    # state, substate, queue, priority, exec_hosts or comment.
    Column("field", Text, nullable=False),
    Column("old_value", Text, nullable=True),
    Column("new_value", Text, nullable=True),
    # Why, when it is not a plain change (first sight, disappeared, end seen late).
    Column("note", Text, nullable=True),
    # The job's key, job id first: a job is often looked up by its id alone.
    Index(None, "job_id", "cluster", "submit_ns"),
    Index(None, "observed_ns"),
)

node_snapshots = Table(
    "node_snapshots",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("cluster", Text, nullable=False),
    Column("scheduler", Text, nullable=False),
    Column("node", Text, nullable=False),
    Column("observed_ns", BigInteger, nullable=False),
    Column("state", Text, nullable=False),
    Column("native_state", Text, nullable=False),
    Column("partitions", Text, nullable=True),
    Column("cpus_total", BigInteger, nullable=True),
    Column("cpus_allocated", BigInteger, nullable=True),
    Column("gpus_total", BigInteger, nullable=True),
    Column("gpus_allocated", BigInteger, nullable=True),
    Column("mem_total_bytes", BigInteger, nullable=True),
    Column("mem_allocated_bytes", BigInteger, nullable=True),
    Column("jobs", Text, nullable=True),
    Column("comment", Text, nullable=True),
    Column("raw_json", Text, nullable=False),
    Index(None, "observed_ns"),
    Index(None, "cluster", "node", "observed_ns"),
)

queue_snapshots = Table(
    "queue_snapshots",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("cluster", Text, nullable=False),
    Column("scheduler", Text, nullable=False),
    Column("queue", Text, nullable=False),
    Column("observed_ns", BigInteger, nullable=False),
    Column("enabled", Boolean, nullable=True),
    Column("started", Boolean, nullable=True),
    Column("jobs_total", BigInteger, nullable=True),
    Column("jobs_queued", BigInteger, nullable=True),
    Column("jobs_running", BigInteger, nullable=True),
    Column("jobs_held", BigInteger, nullable=True),
    Column("state_counts", Text, nullable=False),
    Column("raw_json", Text, nullable=False),
    Index(None, "observed_ns"),
)

system_snapshots = Table(
    "system_snapshots",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("cluster", Text, nullable=False),
    Column("scheduler", Text, nullable=False),
    Column("server", Text, nullable=False),
    Column("observed_ns", BigInteger, nullable=False),
    Column("server_state", Text, nullable=True),
    Column("jobs_total", BigInteger, nullable=True),
    Column("state_counts", Text, nullable=False),
    Column("raw_json", Text, nullable=False),
    Index(None, "observed_ns"),
)

# ------------------------------------------------------------- reservations
#
# Advance reservations (PBS pbs_rstat, Slurm scontrol show reservation): one
# row per reservation, its current or final state, and one
# reservation_history row per change of a tracked field
# (:mod:`collectbus.store.reservations`, written from the rows of
# :mod:`collectbus.jobtrack.reservations`). A reservation is keyed by
# (cluster, resv_id, created_ns): Slurm reuses names. Lists (users, nodes)
# are comma-joined text. Migration 0014.

reservations = Table(
    "reservations",
    metadata,
    Column("cluster", Text, primary_key=True),
    Column("resv_id", Text, primary_key=True),
    Column("created_ns", BigInteger, primary_key=True),
    Column("scheduler", Text, nullable=False),
    Column("name", Text, nullable=True),
    Column("state", Text, nullable=False),
    Column("native_state", Text, nullable=False),
    Column("substate", Text, nullable=True),
    Column("owner", Text, nullable=True),
    Column("queue", Text, nullable=True),
    Column("users", Text, nullable=True),
    Column("nodes", Text, nullable=True),
    Column("nodes_requested", BigInteger, nullable=True),
    Column("cpus_requested", BigInteger, nullable=True),
    Column("start_ns", BigInteger, nullable=True),
    Column("end_ns", BigInteger, nullable=True),
    Column("duration_seconds", BigInteger, nullable=True),
    Column("modified_ns", BigInteger, nullable=True),
    Column("first_seen_ns", BigInteger, nullable=False),
    Column("last_seen_ns", BigInteger, nullable=False),
    Column("raw_json", Text, nullable=False),
    Index(None, "last_seen_ns"),
)

reservation_history = Table(
    "reservation_history",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("cluster", Text, nullable=False),
    Column("resv_id", Text, nullable=False),
    Column("created_ns", BigInteger, nullable=False),
    Column("observed_ns", BigInteger, nullable=False),
    # state, start_ns, end_ns, nodes, queue or users.
    Column("field", Text, nullable=False),
    Column("old_value", Text, nullable=True),
    Column("new_value", Text, nullable=True),
    # Why, when it is not a plain change (first sight, gone from the listing).
    Column("note", Text, nullable=True),
    Index(None, "resv_id", "cluster", "created_ns"),
    Index(None, "observed_ns"),
)

# Incremental aggregates (collectbus.aggregate): one checkpoint per aggregate,
# written in the same transaction as its totals; per group, a base row and a
# row appended by each update since; the old values of edited or deleted
# source rows, logged by triggers; and, for sources that cannot have
# triggers, what each still-open row contributed.
checkpoints = Table(
    "checkpoints",
    metadata,
    Column("name", Text, primary_key=True),
    Column("spec", Text, nullable=False),  # the definition the totals were built from
    Column("last_id", BigInteger, nullable=False),
    Column("state", Text, nullable=False),  # JSON: pending id ranges, updated watermark
    Column("version", BigInteger, nullable=False),  # bumped by every write; guards races
    Column("runs", BigInteger, nullable=False),
    Column("mismatches", BigInteger, nullable=False),
    Column("updated_ns", BigInteger, nullable=False),
    Column("refreshed_ns", BigInteger, nullable=True),
)

aggregate_parts = Table(
    "aggregate_parts",
    metadata,
    Column("name", Text, primary_key=True),
    Column("group_key", Text, primary_key=True),  # JSON array of the key values
    # 0: the base, holding the full sketches; above it, the checkpoint version
    # of the update that appended this row, holding what it changed in them.
    # A group's sketches are the sum of its rows; its totals, those of its
    # newest row.
    Column("part", BigInteger, primary_key=True),
    Column("count", BigInteger, nullable=False),
    Column("errors", BigInteger, nullable=False),
    Column("measures", Text, nullable=False),  # JSON: n, sum, min, max per measure
    Column("sketches", Text, nullable=False),  # one encoded sketch per measure
    # SQLite: stored in key order, so that a group's rows share pages (0008).
    sqlite_with_rowid=False,
)

aggregate_changes = Table(
    "aggregate_changes",
    metadata,
    Column("seq", BigId, primary_key=True, autoincrement=True),
    Column("name", Text, nullable=False),
    Column("row_id", BigInteger, nullable=False),
    Column("old", Text, nullable=False),  # JSON: the row's contribution before the change
    # JSON: its contribution after it; null for a delete; NULL if logged
    # before revision 0009 (the row is then looked up).
    Column("new_contribution", Text, nullable=True),
    Index(None, "name", "seq"),
)

aggregate_ledger = Table(
    "aggregate_ledger",
    metadata,
    Column("name", Text, primary_key=True),
    Column("row_id", BigInteger, primary_key=True),
    Column("contribution", Text, nullable=False),
)

# A read-only source's closed rows, per block of ids, as last compared with the
# source: an update checks blocks against these (0012).
aggregate_blocks = Table(
    "aggregate_blocks",
    metadata,
    Column("name", Text, primary_key=True),
    Column("block", BigInteger, primary_key=True),
    Column("rows", BigInteger, nullable=False),
    Column("id_sum", BigInteger, nullable=False),
    Column("term_sum", BigInteger, nullable=False),
)

# Values and rows the database refused (collectbus.store.quarantine): one row
# per value left out (``field``) or row left out (``field`` NULL), with the
# value as text and why. The rest of each collection was stored.
quarantine = Table(
    "quarantine",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    # When it was refused, and the time of the record that carried it.
    Column("stored_ns", BigInteger, nullable=False),
    Column("time_ns", BigInteger, nullable=True),
    Column("host", Text, nullable=True),
    Column("source", Text, nullable=True),  # the collector, e.g. "host", "calls"
    Column("table_name", Text, nullable=False),
    Column("field", Text, nullable=True),
    Column("value", Text, nullable=True),
    Column("reason", Text, nullable=False),
)

#: Tables whose row counts ``Store.status()`` reports.
COUNTED_TABLES: tuple[str, ...] = (
    "hosts",
    "collection_log",
    *WIDE_TABLES,
    "host_chunks",
    "calls",
    "host_inventory",
    "job_usage",
    "jobs",
    "job_history",
    "node_snapshots",
    "queue_snapshots",
    "system_snapshots",
    "reservations",
    "reservation_history",
    "quarantine",
)

# What ``collectbus serve`` has exported at /metrics (collectbus.serve.counting.saved),
# so that a restarted server continues its counters instead of resetting
# them: per server name and metric source, one row per series (its key as
# canonical JSON, its counters as JSON), and, under the series ``[]``, the
# source's own state (the id its tally had counted up to).
serve_counters = Table(
    "serve_counters",
    metadata,
    Column("instance", Text, primary_key=True),
    Column("source", Text, primary_key=True),
    Column("series", Text, primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_ns", BigInteger, nullable=False),
)
