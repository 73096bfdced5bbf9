"""A job record given again as the very same object is stored exactly as an
equal fresh copy of it is (the PBS collector gives unchanged jobs' records
again), on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from collectbus.jobtrack.state import ApplyResult
from collectbus.jobtrack.tracker import LAST_SEEN_EVERY_NS
from collectbus.jobtrack.writer import TrackedStore
from collectbus.records import COMPLETE_LISTING, CollectionEvent, JobRecord
from collectbus.store import Store
from collectbus.store import open as open_store
from collectbus.testing.schedulers import make_pbs_job

S = 10**9
MINUTE = 60 * S
T0 = 1_795_000_000 * S


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = open_store(store_url)
    yield s
    s.close()


def _event(t: int, cluster: str) -> CollectionEvent:
    return CollectionEvent(
        source="pbs",
        host="pbs01",
        started_ns=t,
        duration_ns=S,
        status="ok",
        details=(COMPLETE_LISTING, ("cluster", cluster)),
    )


def _job(number: int, t: int, **kw: object) -> JobRecord:
    return make_pbs_job(number, cluster="same", submit_ns=T0 - 100 * S, observed_ns=t, **kw)  # type: ignore[arg-type]


def _rows(store: Store, table: str, cluster: str) -> list[tuple[object, ...]]:
    order = "job_id, submit_ns" if table == "jobs" else "id"
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.text(f"SELECT * FROM {table} WHERE cluster = :c ORDER BY {order}"), {"c": cluster}
        ).mappings()
        return [tuple(v for k, v in row.items() if k not in ("cluster", "id")) for row in rows]


def _originals() -> dict[str, JobRecord]:
    running = _job(1, T0, state="running", start_ns=T0 - 10 * S, walltime_used_s=10)
    ended = T0 + 30 * MINUTE
    return {
        "running": running,
        "queued": _job(2, T0),
        "queued, priority 5": _job(2, T0 + 2 * MINUTE, priority=5),
        "held": _job(3, T0, state="held"),
        "ended": dataclasses.replace(running, state="completed", end_ns=ended, exit_status=0),
    }


#: Each collection lists the jobs of a cluster by name, at a time.
CYCLES: list[tuple[int, list[str]]] = [
    (T0, ["running", "queued", "held"]),
    (T0 + MINUTE, ["running", "queued", "held"]),  # nothing changed
    (T0 + 2 * MINUTE, ["running", "queued, priority 5", "held"]),
    (T0 + 3 * MINUTE, ["running", "queued", "held"]),  # the earlier record of job 2, again
    (T0 + 4 * MINUTE, ["running", "queued"]),  # job 3 gone from the listing
    (T0 + 5 * MINUTE, ["running", "queued", "held"]),  # and back, the same object
    (T0 + 5 * MINUTE + LAST_SEEN_EVERY_NS, ["running", "queued", "held"]),  # last_seen due
    (T0 + 30 * MINUTE, ["ended", "queued", "held"]),
]


def test_a_reused_record_object_is_stored_as_an_equal_fresh_copy(store: Store) -> None:
    originals = _originals()
    # Cluster "reused" is given the very same objects every time; cluster
    # "fresh" an equal copy every time.
    mine = {name: dataclasses.replace(r, cluster="reused") for name, r in originals.items()}
    results: dict[str, list[ApplyResult]] = {"reused": [], "fresh": []}
    jobs = TrackedStore(store)
    for cluster in results:
        for t, names in CYCLES:
            if cluster == "reused":
                records = [mine[name] for name in names]
            else:
                records = [dataclasses.replace(originals[n], cluster=cluster) for n in names]
            jobs.write([*records, _event(t, cluster)])
            results[cluster].append(dataclasses.replace(jobs.tracker.last_result, messages=[]))
    assert results["reused"] == results["fresh"]
    assert [r.unchanged for r in results["reused"]] == [0, 3, 2, 2, 2, 2, 3, 2]
    for table in ("jobs", "job_history"):
        assert _rows(store, table, "reused") == _rows(store, table, "fresh")
    history = _rows(store, "job_history", "reused")
    assert any("seen again after it disappeared" in row for row in history)
    assert [row[5] for row in history if row[3] == "priority"] == ["5", "0"]
