"""The reservation tracker: each reservations collection turned into the rows
that change, with a history of state changes.

As the job tracker does for jobs (:mod:`collectbus.jobtrack.tracker`),
:class:`ReservationTracker` holds, per cluster, what it knows of each
reservation, read from the store on first use of the cluster (so a restart
loses no change), and diffs each collection against it:

- a reservation seen for the first time is inserted, with a
  ``reservation_history`` row ``state: -> <state>`` (note ``first seen``);
- a reservation seen again is written again (reservations are few), and each
  change of a tracked field (:data:`~collectbus.store.reservations.RESERVATION_TRACKED`:
  state, start, end, nodes, queue, users) is one history row;
- after a **complete** listing of a cluster (an ``ok``, not stale event with
  ``("reservation_listing", "complete")`` and ``("cluster", NAME)``, see
  :mod:`collectbus.collectors.base`), each reservation of the cluster not in
  a final state and not listed is gone: ``ended`` when its end has passed
  (PBS and Slurm drop a reservation at its end), else ``disappeared`` (it was
  deleted, or the scheduler lost it). Its row and history are kept. An empty
  complete listing is a cluster with no reservation left; a partial or failed
  one marks nothing.

**Identity.** A reservation is its cluster, its id and its creation time
(PBS ``ctime``). Slurm gives no creation time and reuses names: a record
without one belongs to the live reservation of that id, else it is a new
reservation whose creation time is when it was first seen.

Rows are made storable as job rows are (:func:`collectbus.store.jobrows.clean_text`,
numbers outside int64 as NULL); a record whose cluster or id cannot be a key
is refused, one line naming it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from collectbus.clock import NS_PER_S
from collectbus.jobtrack.rows import key_problem_of_cluster, prepare_raw
from collectbus.records import (
    CLUSTER_DETAIL,
    COMPLETE_RESERVATIONS,
    FINAL_RESERVATION_STATES,
    CollectionEvent,
    ReservationRecord,
)
from collectbus.store.bulk import RowTuple
from collectbus.store.jobrows import KEY_LIMIT, LONG_TEXT_LIMIT, TEXT_LIMIT, clean_text
from collectbus.store.reservations import (
    RESERVATION_COLUMNS,
    RESERVATION_TRACKED,
    ReservationRows,
    ReservationTables,
)
from collectbus.values import fit_int64

log = logging.getLogger("collectbus.jobtrack")

#: Reservations in a final state seen within this time are loaded at start.
RESERVATION_HORIZON_NS = 14 * 86400 * NS_PER_S
ENDED, DISAPPEARED = "ended", "disappeared"
_COL = {name: i for i, name in enumerate(RESERVATION_COLUMNS)}
_TRACKED_INDEX = tuple(_COL[name] for name in RESERVATION_TRACKED)
#: (resv_id, created_ns): a reservation within its cluster.
ResvKey = tuple[str, int]


def complete_reservation_clusters(events: Iterable[CollectionEvent]) -> set[str]:
    """The clusters of which this collection is a complete listing of reservations."""
    out: set[str] = set()
    for event in events:
        if event.stale or event.status != "ok" or COMPLETE_RESERVATIONS not in event.details:
            continue
        out |= {value for key, value in event.details if key == CLUSTER_DETAIL}
    return out


def _text(value: str | None, limit: int = TEXT_LIMIT) -> str | None:
    return None if value is None else clean_text(value, limit)[0]


def _join(values: tuple[str, ...]) -> str | None:
    return _text(",".join(values), LONG_TEXT_LIMIT) if values else None


def _key_problem(record: ReservationRecord) -> str | None:
    problem = key_problem_of_cluster(record.cluster)
    if problem is not None:
        return problem
    if not record.resv_id:
        return "empty reservation id"
    if len(record.resv_id) > KEY_LIMIT or clean_text(record.resv_id, KEY_LIMIT)[1]:
        return "reservation id is not short, valid text"
    return None


def reservation_row(
    record: ReservationRecord, created_ns: int, first_seen_ns: int, *, scrub: bool
) -> RowTuple:
    """The ``reservations`` row of ``record``, in ``RESERVATION_COLUMNS`` order."""
    raw, _ = prepare_raw(record.raw_json, scrub=scrub)
    values: dict[str, object] = {
        "cluster": record.cluster,
        "resv_id": record.resv_id,
        "created_ns": created_ns,
        "scheduler": _text(record.scheduler),
        "name": _text(record.name),
        "state": _text(record.state),
        "native_state": _text(record.native_state),
        "substate": _text(record.substate),
        "owner": _text(record.owner),
        "queue": _text(record.queue),
        "users": _join(record.users),
        "nodes": _join(record.nodes),
        "nodes_requested": fit_int64(record.nodes_requested),
        "cpus_requested": fit_int64(record.cpus_requested),
        "start_ns": fit_int64(record.start_ns),
        "end_ns": fit_int64(record.end_ns),
        "duration_seconds": fit_int64(record.duration_seconds),
        "modified_ns": fit_int64(record.modified_ns),
        "first_seen_ns": first_seen_ns,
        "last_seen_ns": record.observed_ns,
        "raw_json": raw,
    }
    return tuple(values[name] for name in RESERVATION_COLUMNS)


def _tracked(row: RowTuple) -> tuple[str | None, ...]:
    return tuple(None if row[i] is None else str(row[i]) for i in _TRACKED_INDEX)


@dataclass
class TrackedReservations:
    """One collection tracked: the rows to write and the entries they replace."""

    rows: ReservationRows = field(default_factory=ReservationRows)
    entries: dict[str, dict[ResvKey, RowTuple]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


class ReservationTracker:
    """What is known of every reservation of the clusters seen, and the diff
    of each collection."""

    def __init__(self, stored: ReservationTables, *, scrub: bool = False) -> None:
        self._stored = stored
        self.scrub = scrub
        self._clusters: dict[str, dict[ResvKey, RowTuple]] = {}
        #: Records refused since this tracker started.
        self.refused_total = 0

    def _held(self, cluster: str, now_ns: int | None) -> dict[ResvKey, RowTuple]:
        held = self._clusters.get(cluster)
        if held is None:
            since = None if now_ns is None else now_ns - RESERVATION_HORIZON_NS
            held = {}
            for row in self._stored.current(cluster, ended_since_ns=since):
                resv_id, created_ns = row[_COL["resv_id"]], row[_COL["created_ns"]]
                assert isinstance(resv_id, str)
                assert isinstance(created_ns, int)
                held[(resv_id, created_ns)] = row
            self._clusters[cluster] = held
        return held

    def track(
        self,
        records: Sequence[ReservationRecord],
        *,
        listed: Iterable[str] = (),
        now_ns: int | None = None,
    ) -> TrackedReservations:
        """The rows ``records`` (one collection) change; nothing held changes
        until :meth:`commit`. ``listed``: the clusters of which ``records`` are
        a complete listing (:func:`complete_reservation_clusters`)."""
        tracked = TrackedReservations()
        complete = set(listed)
        by_cluster: dict[str, list[ReservationRecord]] = {c: [] for c in complete}
        for record in records:
            by_cluster.setdefault(record.cluster, []).append(record)
        for cluster, batch in by_cluster.items():
            problem = key_problem_of_cluster(cluster)
            if problem is not None:
                for record in batch:
                    self._refuse(tracked, repr(cluster), record.resv_id, problem)
                continue
            when = max([r.observed_ns for r in batch] + ([now_ns] if now_ns else []), default=None)
            self._diff(cluster, batch, tracked, complete=cluster in complete, now_ns=when)
        tracked.rows.records = len(records)
        return tracked

    def commit(self, tracked: TrackedReservations) -> None:
        """Keep what ``tracked`` changed: the store has written its rows."""
        for cluster, entries in tracked.entries.items():
            self._clusters.setdefault(cluster, {}).update(entries)

    def forget(self) -> None:
        """Drop what is held: it is read from the store again."""
        self._clusters.clear()

    def _refuse(self, tracked: TrackedReservations, cluster: str, resv_id: str, why: str) -> None:
        message = f"cluster {cluster} reservation {resv_id!r}: refused: {why}"
        tracked.problems.append(message)
        self.refused_total += 1
        log.warning("reservations: %s", message)

    def _key(
        self,
        record: ReservationRecord,
        held: dict[ResvKey, RowTuple],
        staged: dict[ResvKey, RowTuple],
    ) -> ResvKey:
        if record.created_ns is not None:
            return record.resv_id, record.created_ns
        live = [
            key
            for key, row in (*held.items(), *staged.items())
            if key[0] == record.resv_id and row[_COL["state"]] not in FINAL_RESERVATION_STATES
        ]
        if live:
            return max(live, key=lambda k: k[1])
        return record.resv_id, record.observed_ns

    def _diff(
        self,
        cluster: str,
        batch: list[ReservationRecord],
        tracked: TrackedReservations,
        *,
        complete: bool,
        now_ns: int | None,
    ) -> None:
        held = self._held(cluster, now_ns)
        staged = tracked.entries.setdefault(cluster, {})
        rows = tracked.rows
        seen: set[ResvKey] = set()
        for record in batch:
            problem = _key_problem(record)
            if problem is not None:
                self._refuse(tracked, cluster, record.resv_id, problem)
                continue
            key = self._key(record, held, staged)
            seen.add(key)
            old = staged.get(key) or held.get(key)
            first = record.observed_ns
            if old is not None:
                old_first = old[_COL["first_seen_ns"]]
                assert isinstance(old_first, int)
                first = min(first, old_first)
            row = reservation_row(record, key[1], first, scrub=self.scrub)
            db_key = (cluster, *key)
            if old is None:
                rows.inserts.append(row)
                rows.history.append(
                    (*db_key, record.observed_ns, "state", None, row[_COL["state"]], "first seen")
                )
            else:
                if key in staged and old in rows.inserts:
                    rows.inserts[rows.inserts.index(old)] = row
                else:
                    rows.updates.append(row)
                was = old[_COL["state"]]
                for name, before, after in zip(
                    RESERVATION_TRACKED, _tracked(old), _tracked(row), strict=True
                ):
                    if before != after:
                        note = "seen again after it disappeared" if was == DISAPPEARED else None
                        rows.history.append(
                            (*db_key, record.observed_ns, name, before, after, note)
                        )
            staged[key] = row
        if not complete or now_ns is None:
            return
        for key, row in list(held.items()):
            if key in seen or key in staged or row[_COL["state"]] in FINAL_RESERVATION_STATES:
                continue
            end = row[_COL["end_ns"]]
            ended = isinstance(end, int) and end <= now_ns
            state = ENDED if ended else DISAPPEARED
            note = (
                "gone from the listing after its end"
                if ended
                else "gone from a complete listing before its end"
            )
            gone = list(row)
            gone[_COL["state"]] = state
            gone_row = tuple(gone)
            rows.updates.append(gone_row)
            rows.history.append((cluster, *key, now_ns, "state", row[_COL["state"]], state, note))
            staged[key] = gone_row
