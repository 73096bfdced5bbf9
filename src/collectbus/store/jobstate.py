"""The job cache and the rows a collection stages, for :mod:`collectbus.store.jobs`.

:class:`ClusterCache` holds what the store knows of each job of one cluster:
its tracked fields as text, when it was first and last seen, and a
fingerprint of the record last stored. :class:`Staged` holds what one
collection writes and the cache entries it replaces once it commits.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from operator import attrgetter

from sqlalchemy import Connection, select

from collectbus.clock import NS_PER_S
from collectbus.records import FINAL_JOB_STATES, CollectionEvent, JobRecord
from collectbus.store.bulk import RowTuple, bulk_insert
from collectbus.store.jobrows import JOB_COLUMNS, TRACKED, key_problem
from collectbus.store.schema import jobs

log = logging.getLogger("collectbus.store.jobs")

#: Finished jobs seen within this time are loaded into the cache at start.
CACHE_HORIZON_NS = 14 * 86400 * NS_PER_S
#: Problems logged one by one per collection; the rest are counted.
LOGGED_PROBLEMS = 5
DISAPPEARED = "disappeared"
ENDED = (*sorted(FINAL_JOB_STATES), DISAPPEARED)

HISTORY_COLUMNS = (
    "cluster",
    "job_id",
    "submit_ns",
    "observed_ns",
    "field",
    "old_value",
    "new_value",
    "note",
)
_LOOKUP_CHUNK = 500
_UPDATED = tuple(c for c in JOB_COLUMNS if c not in ("cluster", "job_id", "submit_ns"))
_CACHED = ("job_id", "submit_ns", *TRACKED, "first_seen_ns", "last_seen_ns")

Key = tuple[str, int]


@dataclass(slots=True)
class Current:
    """What the cache knows of one stored job."""

    tracked: tuple[str | None, ...]
    first_seen_ns: int
    last_seen_ns: int
    #: ``last_seen_ns`` as it is in the database.
    stored_seen_ns: int
    #: Hash of the record last stored; None when loaded from the database.
    fingerprint: int | None
    #: The record last stored (records are frozen): given again, the very same
    #: object is unchanged without hashing it. The PBS collector gives an
    #: unchanged job's record object again, and holds it anyway.
    record: JobRecord | None = None

    @property
    def live(self) -> bool:
        return self.tracked[0] not in ENDED


@dataclass(slots=True)
class ClusterCache:
    jobs: dict[Key, Current] = field(default_factory=dict)
    #: Newest submit time per job id, for records that lack theirs.
    newest: dict[str, int] = field(default_factory=dict)
    live: set[Key] = field(default_factory=set)

    def put(self, key: Key, cur: Current) -> None:
        self.jobs[key] = cur
        if key[1] > self.newest.get(key[0], -(2**63)):
            self.newest[key[0]] = key[1]
        if cur.live:
            self.live.add(key)
        else:
            self.live.discard(key)


@dataclass
class ApplyResult:
    """What one collection changed in ``jobs`` and ``job_history``."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    disappeared: int = 0
    history: int = 0
    refused: int = 0
    repaired: int = 0
    snapshots: int = 0
    messages: list[str] = field(default_factory=list)


@dataclass
class Staged:
    """Rows to write and cache entries to keep once the transaction commits."""

    result: ApplyResult = field(default_factory=ApplyResult)
    inserts: dict[tuple[str, str, int], list[object]] = field(default_factory=dict)
    updates: dict[tuple[str, str, int], list[object]] = field(default_factory=dict)
    touches: list[RowTuple] = field(default_factory=list)
    vanished: list[RowTuple] = field(default_factory=list)
    history: list[RowTuple] = field(default_factory=list)
    entries: dict[str, dict[Key, Current]] = field(default_factory=dict)

    def problem(self, cluster: str, job_id: str, text: str) -> None:
        message = f"cluster {cluster} job {job_id}: {text}"
        self.result.messages.append(message)
        if len(self.result.messages) <= LOGGED_PROBLEMS:
            log.warning("jobs: %s", message)


def load_cluster(conn: Connection, cluster: str, now_ns: int | None) -> ClusterCache:
    """The stored jobs of ``cluster`` that are live, or ended within the horizon."""
    cache = ClusterCache()
    c = jobs.c
    query = select(*(c[name] for name in _CACHED)).where(c.cluster == cluster)
    if now_ns is not None:
        query = query.where(c.state.not_in(ENDED) | (c.last_seen_ns >= now_ns - CACHE_HORIZON_NS))
    for row in conn.execute(query):
        cache.put((row[0], row[1]), _from_db(row))
    return cache


def lookup(conn: Connection, cluster: str, cache: ClusterCache, batch: list[JobRecord]) -> None:
    """Load stored jobs that the cache does not hold but the batch names."""
    missing = sorted(
        {
            r.job_id
            for r in batch
            if (
                (r.submit_ns is None and r.job_id not in cache.newest)
                or (r.submit_ns is not None and (r.job_id, r.submit_ns) not in cache.jobs)
            )
            and key_problem(r) is None
        }
    )
    c = jobs.c
    for i in range(0, len(missing), _LOOKUP_CHUNK):
        chunk = missing[i : i + _LOOKUP_CHUNK]
        query = select(*(c[name] for name in _CACHED)).where(
            c.cluster == cluster, c.job_id.in_(chunk)
        )
        for row in conn.execute(query):
            if (row[0], row[1]) not in cache.jobs:
                cache.put((row[0], row[1]), _from_db(row))


def write_staged(conn: Connection, staged: Staged, *, copy: bool) -> None:
    """Write the staged inserts, updates and history rows on ``conn``."""
    quote = conn.dialect.identifier_preparer.quote
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    key_where = f"cluster = {mark} AND job_id = {mark} AND submit_ns = {mark}"
    bulk_insert(conn, "jobs", JOB_COLUMNS, [tuple(r) for r in staged.inserts.values()], copy=copy)
    if staged.updates:
        sets = ", ".join(f"{quote(c)} = {mark}" for c in _UPDATED)
        rows = [(*row[3:], *row[:3]) for row in staged.updates.values()]
        conn.exec_driver_sql(f"UPDATE jobs SET {sets} WHERE {key_where}", rows)
    if staged.touches:
        conn.exec_driver_sql(
            f"UPDATE jobs SET last_seen_ns = {mark} WHERE {key_where}", staged.touches
        )
    if staged.vanished:
        conn.exec_driver_sql(f"UPDATE jobs SET state = {mark} WHERE {key_where}", staged.vanished)
    staged.result.history = len(staged.history)
    bulk_insert(conn, "job_history", HISTORY_COLUMNS, staged.history, copy=copy)


def _from_db(row: Sequence[object]) -> Current:
    tracked = tuple(None if v is None else str(v) for v in row[2 : 2 + len(TRACKED)])
    first, last = row[2 + len(TRACKED)], row[3 + len(TRACKED)]
    assert isinstance(first, int)
    assert isinstance(last, int)
    return Current(tracked, first, last, last, None)


# Equal fingerprints, equal rows. The raw payload is the scheduler's whole
# description of the job, and the fields are parsed from it, so the payload
# and the fields a parser may derive from the time of observation (usage, end)
# stand for the record; a record without a payload is judged on every field.
_FINGERPRINT = attrgetter(
    "raw_json",
    "state",
    "substate",
    "walltime_used_seconds",
    "cpu_used_seconds",
    "mem_used_bytes",
    "end_ns",
    "exit_status",
)
_EVERY_FIELD = attrgetter(*(f for f in JobRecord.__dataclass_fields__ if f != "observed_ns"))
#: The submit time of a record that has none and names no stored job.
NO_SUBMIT = -(2**63)


def fingerprint(record: JobRecord) -> int:
    """A hash that changes whenever the stored row of ``record`` would."""
    if len(record.raw_json) > 2:
        return hash(_FINGERPRINT(record))
    return hash(_EVERY_FIELD(record))


def details_json(details: Sequence[tuple[str, str]]) -> str | None:
    """``CollectionEvent.details`` as the JSON object ``collection_log.details``
    keeps: key to value, in the order noted; the values of a key noted more than
    once are joined with ``"; "``. None when nothing was noted."""
    if not details:
        return None
    out: dict[str, str] = {}
    for key, value in details:
        out[key] = f"{out[key]}; {value}" if key in out else value
    return json.dumps(out, ensure_ascii=False)


def event_row(event: CollectionEvent) -> dict[str, object]:
    """The ``collection_log`` row of one collection."""
    return {
        "source": event.source,
        "host": event.host,
        "started_ns": event.started_ns,
        "duration_ns": event.duration_ns,
        "status": event.status,
        "records": event.records,
        "error": event.error,
        "stale": event.stale,
        "details": details_json(event.details),
    }
