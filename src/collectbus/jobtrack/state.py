"""What the job tracker holds of each job, and what one collection stages.

:class:`ClusterState` holds what the tracker knows of each job of one cluster:
its tracked fields as text, when it was first and last seen, and a fingerprint
of the record last written. :class:`Tracked` holds what one collection writes
(a :class:`~collectbus.store.jobtables.SchedulerRows`) and the entries it
replaces once the store has written it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Protocol

from collectbus.clock import NS_PER_S
from collectbus.jobtrack.identity import JobKey
from collectbus.jobtrack.snapshots import SnapshotRows
from collectbus.records import JobRecord
from collectbus.store.jobtables import ENDED, SchedulerRows, StoredJob

log = logging.getLogger("collectbus.jobtrack")

#: Finished jobs seen within this time are loaded at start.
CACHE_HORIZON_NS = 14 * 86400 * NS_PER_S
#: Problems logged one by one per collection; the rest are counted.
LOGGED_PROBLEMS = 5


class StoredJobs(Protocol):
    """What the store holds of the jobs (``Store.jobs``,
    :class:`~collectbus.store.jobtables.JobTables`)."""

    def current(self, cluster: str, *, ended_since_ns: int | None) -> list[StoredJob]:
        """The jobs of ``cluster`` not ended, or last seen since ``ended_since_ns``."""
        ...

    def named(self, cluster: str, job_ids: list[str]) -> list[StoredJob]:
        """The jobs of ``cluster`` with one of ``job_ids``, any submit time."""
        ...


@dataclass(slots=True)
class Current:
    """What the tracker knows of one job."""

    tracked: tuple[str | None, ...]
    first_seen_ns: int
    last_seen_ns: int
    #: ``last_seen_ns`` as it is in the store.
    stored_seen_ns: int
    #: Hash of the record last written; None when read from the store.
    fingerprint: int | None
    #: The record last written (records are frozen): given again, the very same
    #: object is unchanged without hashing it. The PBS collector gives an
    #: unchanged job's record object again, and holds it anyway.
    record: JobRecord | None = None

    @property
    def live(self) -> bool:
        return self.tracked[0] not in ENDED

    @classmethod
    def stored(cls, job: StoredJob) -> Current:
        return cls(job.tracked, job.first_seen_ns, job.last_seen_ns, job.last_seen_ns, None)


@dataclass(slots=True)
class ClusterState:
    jobs: dict[JobKey, Current] = field(default_factory=dict)
    #: Newest submit time per job id, for records that lack theirs (:func:`job_key`).
    newest: dict[str, int] = field(default_factory=dict)
    live: set[JobKey] = field(default_factory=set)

    def put(self, key: JobKey, cur: Current) -> None:
        self.jobs[key] = cur
        if key[1] > self.newest.get(key[0], -(2**63)):
            self.newest[key[0]] = key[1]
        if cur.live:
            self.live.add(key)
        else:
            self.live.discard(key)


@dataclass
class ApplyResult:
    """What one collection changed in ``jobs``, ``job_history`` and the snapshots."""

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
class Tracked:
    """One collection tracked: the rows to write, and the tracker's entries to
    keep once they are written."""

    rows: SchedulerRows = field(default_factory=SchedulerRows)
    result: ApplyResult = field(default_factory=ApplyResult)
    entries: dict[str, dict[JobKey, Current]] = field(default_factory=dict)
    snapshots: SnapshotRows = field(default_factory=SnapshotRows)

    def problem(self, cluster: str, job_id: str, text: str) -> None:
        message = f"cluster {cluster} job {job_id}: {text}"
        self.result.messages.append(message)
        if len(self.result.messages) <= LOGGED_PROBLEMS:
            log.warning("jobs: %s", message)


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


def fingerprint(record: JobRecord) -> int:
    """A hash that changes whenever the stored row of ``record`` would."""
    if len(record.raw_json) > 2:
        return hash(_FINGERPRINT(record))
    return hash(_EVERY_FIELD(record))
