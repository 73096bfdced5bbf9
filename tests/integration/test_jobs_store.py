"""Jobs in real databases: diffing, history, id reuse, disappearance, retention,
scrubbing and bad input, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from collectbus.errors import StoreError
from collectbus.jobtrack.state import CACHE_HORIZON_NS
from collectbus.jobtrack.writer import TrackedStore
from collectbus.records import (
    COMPLETE_LISTING,
    CollectionEvent,
    JobRecord,
    NodeRecord,
    QueueRecord,
    SystemRecord,
)
from collectbus.store import Store
from collectbus.store import open as open_store
from collectbus.store.retention import RetentionLimits
from collectbus.testing.schedulers import make_pbs_job

S = 10**9
DAY = 86400 * S
T0 = 1_795_000_000 * S
DATA = Path(__file__).parent.parent / "data" / "jobs"


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = open_store(store_url)
    yield s
    s.close()


@pytest.fixture
def jobs(store: Store) -> TrackedStore:
    """The job tracker in front of ``store``, as the pipeline's store writer has it."""
    return TrackedStore(store)


def _job(number: int, t: int, **kw: object) -> JobRecord:
    return make_pbs_job(number, submit_ns=T0 - 100 * S, observed_ns=t, **kw)  # type: ignore[arg-type]


def _rows(store: Store, sql: str, **params: object) -> list[tuple[object, ...]]:
    with store.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(sql), params)]


def _history(store: Store, job_id: str | None = None) -> list[tuple[object, ...]]:
    where = "WHERE job_id = :j" if job_id else ""
    return _rows(
        store,
        f"SELECT job_id, submit_ns, observed_ns, field, old_value, new_value, note "
        f"FROM job_history {where} ORDER BY id",
        j=job_id,
    )


def _event(
    t: int, *, status: str = "ok", complete: bool = True, cluster: str = "aurora"
) -> CollectionEvent:
    details = (COMPLETE_LISTING, ("cluster", cluster)) if complete else ()
    return CollectionEvent(
        source="pbs", host="pbs01", started_ns=t, duration_ns=S, status=status, details=details
    )


# ---------------------------------------------------------------- history


CHANGES: list[tuple[str, dict[str, object], str | None, str | None]] = [
    ("state", {"state": "held"}, "queued", "held"),
    ("queue", {"queue": "debug"}, "prod", "debug"),
    ("priority", {"priority": 150}, "0", "150"),
    (
        "comment",
        {"comment": "Not Running: Insufficient amount of resource: ncpus"},
        None,
        "Not Running: Insufficient amount of resource: ncpus",
    ),
]


@pytest.mark.parametrize(("field", "change", "old", "new"), CHANGES)
def test_each_tracked_change_is_one_history_row(
    store: Store,
    jobs: TrackedStore,
    field: str,
    change: dict[str, object],
    old: str | None,
    new: str | None,
) -> None:
    jobs.apply([_job(1, T0), _job(2, T0)], complete=True)
    jobs.apply([_job(1, T0 + 30 * S, **change), _job(2, T0 + 30 * S)], complete=True)
    rows = [r for r in _history(store) if r[6] != "first seen"]
    changed = [r for r in rows if r[3] == field]
    assert len(changed) == 1
    assert changed[0][0] == "1.pbs01.example.org"
    assert changed[0][2] == T0 + 30 * S
    assert (changed[0][4], changed[0][5]) == (old, new)
    # A held PBS job also changes its substate (10 -> 20): nothing else is recorded.
    assert {r[3] for r in rows} <= {field, "substate"}


def test_start_records_state_substate_and_exec_hosts(store: Store, jobs: TrackedStore) -> None:
    jobs.apply([_job(1, T0, nodes=2)], complete=True)
    jobs.apply(
        [_job(1, T0 + 30 * S, nodes=2, state="running", start_ns=T0 + 20 * S)], complete=True
    )
    rows = {r[3]: (r[4], r[5]) for r in _history(store) if r[6] is None}
    assert rows["state"] == ("queued", "running")
    assert rows["substate"] == ("10", "42")
    old, new = rows["exec_hosts"]
    assert old is None
    assert new is not None
    assert len(new.split(",")) == 2


def test_nothing_changed_writes_no_history_and_no_row(store: Store, jobs: TrackedStore) -> None:
    jobs.apply([_job(1, T0), _job(2, T0, state="running", start_ns=T0)], complete=True)
    before = _history(store)
    for k in range(1, 4):
        result = jobs.apply(
            [_job(1, T0 + k * 30 * S), _job(2, T0 + k * 30 * S, state="running", start_ns=T0)],
            complete=True,
        )
        assert (result.inserted, result.updated, result.history, result.unchanged) == (0, 0, 0, 2)
    assert _history(store) == before
    # The reloaded cache (a restarted daemon) agrees: nothing to record either.
    jobs.tracker.forget()
    jobs.apply(
        [_job(1, T0 + 200 * S), _job(2, T0 + 200 * S, state="running", start_ns=T0)], complete=True
    )
    assert _history(store) == before


def test_usage_updates_the_row_without_history(store: Store, jobs: TrackedStore) -> None:
    running = {"state": "running", "start_ns": T0}
    jobs.apply([_job(1, T0, walltime_used_s=10, **running)], complete=True)
    result = jobs.apply([_job(1, T0 + 60 * S, walltime_used_s=70, **running)], complete=True)
    assert (result.updated, result.history) == (1, 0)
    assert _rows(store, "SELECT walltime_used_seconds, last_seen_ns FROM jobs") == [
        (70, T0 + 60 * S)
    ]


# ---------------------------------------------------------------- identity


def test_a_reused_id_with_a_new_submit_time_is_a_new_job(store: Store, jobs: TrackedStore) -> None:
    old = _job(7, T0, state="completed", start_ns=T0 - 50 * S, end_ns=T0 - 10 * S)
    jobs.apply([old], complete=True)
    new = dataclasses.replace(_job(7, T0 + DAY), submit_ns=T0 + DAY - 5 * S)
    result = jobs.apply([new], complete=True)
    assert result.inserted == 1
    rows = _rows(store, "SELECT job_id, submit_ns, state FROM jobs ORDER BY submit_ns")
    assert rows == [
        ("7.pbs01.example.org", T0 - 100 * S, "completed"),
        ("7.pbs01.example.org", T0 + DAY - 5 * S, "queued"),
    ]
    # The finished job is not marked disappeared by the newer listing.
    assert [r[5] for r in _history(store)] == ["completed", "queued"]


def test_a_record_without_submit_time_joins_the_newest_job_of_its_id(
    store: Store, jobs: TrackedStore, caplog: pytest.LogCaptureFixture
) -> None:
    jobs.apply([_job(1, T0)], complete=True)
    late = dataclasses.replace(_job(1, T0 + 30 * S, state="held"), submit_ns=None)
    orphan = dataclasses.replace(_job(2, T0 + 30 * S), submit_ns=None)
    with caplog.at_level(logging.WARNING, logger="collectbus.jobtrack"):
        result = jobs.apply([late, orphan, _job(3, T0 + 30 * S)], complete=False)
    assert (result.refused, result.inserted, result.updated) == (1, 1, 1)
    assert result.messages == [
        "cluster aurora job '2.pbs01.example.org': refused: no submit time, "
        "and no earlier record of this job to take it from"
    ]
    assert result.messages[0] in caplog.text
    assert _rows(store, "SELECT job_id, state FROM jobs ORDER BY job_id") == [
        ("1.pbs01.example.org", "held"),
        ("3.pbs01.example.org", "queued"),
    ]
    assert jobs.tracker.refused_total == 1


# ---------------------------------------------------------------- disappearance


def test_a_job_gone_from_a_complete_listing_disappears_then_completes_later(
    store: Store, jobs: TrackedStore
) -> None:
    running = {"state": "running", "start_ns": T0}
    jobs.write([_job(1, T0, **running), _job(2, T0), _event(T0)])
    # Job 1 leaves the live listing (qstat -f without -x) without an end seen.
    jobs.write([_job(2, T0 + 30 * S), _event(T0 + 30 * S)])
    assert _rows(store, "SELECT job_id, state FROM jobs ORDER BY job_id") == [
        ("1.pbs01.example.org", "disappeared"),
        ("2.pbs01.example.org", "queued"),
    ]
    # Later, qstat -x (or sacct) reports its end: a finished record completes it.
    finished = _job(1, T0 + 90 * S, state="completed", start_ns=T0, end_ns=T0 + 40 * S)
    jobs.write([finished, _event(T0 + 90 * S, complete=False)])
    history = [(r[3], r[4], r[5], r[6]) for r in _history(store, "1.pbs01.example.org")]
    assert (
        "state",
        "running",
        "disappeared",
        "gone from a complete listing with no end seen",
    ) in history
    states = [h for h in history if h[0] == "state"]
    assert states[-1] == ("state", "disappeared", "completed", "end seen after the job disappeared")
    assert _rows(
        store, "SELECT state, end_ns, exit_status FROM jobs WHERE job_id = '1.pbs01.example.org'"
    ) == [("completed", T0 + 40 * S, 0)]


def test_an_empty_complete_listing_names_its_cluster(store: Store, jobs: TrackedStore) -> None:
    jobs.write([_job(1, T0), _event(T0)])
    jobs.write([_event(T0 + 30 * S)])  # the queue is empty now
    assert _rows(store, "SELECT state FROM jobs") == [("disappeared",)]
    # Another cluster's listing leaves this one alone.
    jobs.write([_job(9, T0 + 60 * S, cluster="polaris"), _event(T0 + 60 * S, cluster="polaris")])
    assert _rows(store, "SELECT cluster, state FROM jobs ORDER BY cluster") == [
        ("aurora", "disappeared"),
        ("polaris", "queued"),
    ]


@pytest.mark.parametrize(
    "event",
    [
        _event(T0 + 30 * S, status="partial"),
        _event(T0 + 30 * S, status="error"),
        _event(T0 + 30 * S, status="timeout"),
        dataclasses.replace(_event(T0 + 30 * S), stale=True),
        _event(T0 + 30 * S, complete=False),
    ],
    ids=["partial", "error", "timeout", "stale", "not-a-complete-listing"],
)
def test_a_failed_or_partial_collection_marks_nothing(
    store: Store, jobs: TrackedStore, event: CollectionEvent
) -> None:
    jobs.write([_job(1, T0), _job(2, T0), _event(T0)])
    jobs.write([_job(2, T0 + 30 * S), event])
    assert _rows(store, "SELECT state FROM jobs ORDER BY job_id") == [("queued",), ("queued",)]
    assert all(r[5] != "disappeared" for r in _history(store))
    assert jobs.apply([], complete=False).disappeared == 0


def test_a_rolled_back_collection_leaves_the_cache_as_it_was(
    store: Store, jobs: TrackedStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    jobs.apply([_job(1, T0)], complete=True)
    import collectbus.store.store as engine_module

    def broken(*_a: object, **_k: object) -> None:
        raise sa.exc.OperationalError("INSERT", {}, Exception("disk I/O error"))

    monkeypatch.setattr(engine_module, "write_scheduler_rows", broken)
    with pytest.raises(StoreError, match="disk I/O error"):
        jobs.apply([_job(1, T0 + 30 * S, state="held")], complete=True)
    monkeypatch.undo()
    result = jobs.apply([_job(1, T0 + 60 * S, state="held")], complete=True)
    assert (result.updated, result.history) == (1, 2)  # state and substate, once
    assert [r[5] for r in _history(store)] == ["queued", "held", "20"]


# ---------------------------------------------------------------- retention


def test_retention_never_deletes_a_job_whose_history_is_kept(
    store: Store, jobs: TrackedStore
) -> None:
    old = T0 - 400 * DAY
    done = {"state": "completed", "start_ns": old, "end_ns": old + 10 * S}
    jobs.apply([make_pbs_job(1, submit_ns=old - S, observed_ns=old, **done)], complete=False)
    jobs.apply([_job(2, T0 - 10 * DAY, **done)], complete=False)
    jobs.apply([_job(3, T0 - 400 * DAY)], complete=False)  # still queued: never deleted
    # History kept 2 years: no job may go, although jobs are kept only 30 days.
    keep_history = RetentionLimits(job_history_days=730, jobs_days=30)
    assert store.cleanup(keep_history, now_ns=T0).rows == {"job_history": 0, "jobs": 0}
    assert len(_rows(store, "SELECT * FROM jobs")) == 3
    # History kept a year: job 1's history goes, then job 1 itself, in one pass.
    limits = RetentionLimits(job_history_days=365, jobs_days=30)
    dry = store.cleanup(limits, now_ns=T0, dry_run=True)
    assert dry.rows == {"job_history": 2, "jobs": 1}
    assert len(_rows(store, "SELECT * FROM jobs")) == 3
    assert store.cleanup(limits, now_ns=T0).rows == {"job_history": 2, "jobs": 1}
    remaining = _rows(store, "SELECT job_id FROM jobs ORDER BY job_id")
    assert remaining == [("2.pbs01.example.org",), ("3.pbs01.example.org",)]
    orphans = _rows(
        store,
        "SELECT count(*) FROM job_history h WHERE NOT EXISTS (SELECT 1 FROM jobs j WHERE "
        "j.cluster = h.cluster AND j.job_id = h.job_id AND j.submit_ns = h.submit_ns)",
    )
    assert orphans == [(0,)]


def test_retention_of_snapshots(store: Store, jobs: TrackedStore) -> None:
    for days in (100, 10):
        t = T0 - days * DAY
        jobs.write(
            [
                NodeRecord(
                    cluster="aurora",
                    scheduler="pbs",
                    node="x1",
                    observed_ns=t,
                    state="idle",
                    native_state="free",
                ),
                QueueRecord(cluster="aurora", scheduler="pbs", queue="prod", observed_ns=t),
                SystemRecord(cluster="aurora", scheduler="pbs", server="pbs01", observed_ns=t),
            ]
        )
    stats = store.cleanup(RetentionLimits(snapshot_days=90), now_ns=T0)
    assert stats.rows == {"node_snapshots": 1, "queue_snapshots": 1, "system_snapshots": 1}
    assert _rows(store, "SELECT observed_ns FROM node_snapshots") == [(T0 - 10 * DAY,)]


# ---------------------------------------------------------------- payloads


def _aurora_records() -> list[JobRecord]:
    payload = json.loads((DATA / "qstat_fx_aurora.json").read_text())
    out = []
    for i, (job_id, job) in enumerate(payload["Jobs"].items()):
        out.append(
            JobRecord(
                cluster="aurora",
                scheduler="pbs",
                job_id=job_id,
                submit_ns=T0 - i * S,
                observed_ns=T0,
                state="completed" if job["job_state"] == "F" else "held",
                native_state=job["job_state"],
                user=job["Job_Owner"].split("@")[0],
                account=job.get("Account_Name"),
                name=job["Job_Name"],
                queue=job["queue"],
                raw_json=json.dumps(job),
            )
        )
    return out


@pytest.mark.parametrize("scrub", [False, True])
def test_scrubbing_removes_personal_fields_from_the_raw_payload(
    store: Store, jobs: TrackedStore, scrub: bool
) -> None:
    jobs.tracker.scrub = scrub
    records = _aurora_records()
    jobs.apply(records, complete=False)
    stored = _rows(store, "SELECT job_id, raw_json, username FROM jobs ORDER BY job_id")
    assert len(stored) == 4
    personal = (
        "Job_Owner",
        "Account_Name",
        "Job_Name",
        "Mail_Users",
        "Variable_List",
        "Output_Path",
    )
    for job_id, raw_text, username in stored:
        raw = json.loads(str(raw_text))
        original = json.loads(next(r.raw_json for r in records if r.job_id == job_id))
        present = [k for k in personal if k in original]
        assert present
        for key in present:
            if scrub:
                assert raw[key] == "[scrubbed]"
            else:
                assert raw[key] == original[key]
        if scrub:
            assert str(username) not in str(raw_text).replace(
                f'"{username}"', ""
            )  # only the column
            # What is not personal is kept as it was.
            assert raw["Resource_List"] == original["Resource_List"]
            assert raw["job_state"] == original["job_state"]
        else:
            assert raw == original


# ---------------------------------------------------------------- bad input


def test_bad_records_are_repaired_or_refused_and_the_rest_is_stored(
    store: Store, jobs: TrackedStore
) -> None:
    huge = "x" * 2_000_000
    bad_bytes = b"sim\xff\xfe_run".decode("utf-8", "surrogateescape")
    records = [
        _job(1, T0, comment=huge),
        dataclasses.replace(_job(2, T0), name=bad_bytes),
        dataclasses.replace(_job(3, T0), submit_ns=None),
        dataclasses.replace(_job(4, T0), job_id="4.pbs\udcff"),
        _job(5, T0, comment="nul\x00inside"),
        _job(6, T0),
    ]
    result = jobs.apply(records, complete=False)
    assert (result.inserted, result.refused, result.repaired) == (4, 2, 3)
    messages = "\n".join(result.messages)
    assert len(result.messages) == 5
    assert all("\n" not in m and m.startswith("cluster aurora job ") for m in result.messages)
    assert (
        "job 1.pbs01.example.org: stored, comment: 2,000,000 characters, truncated to 4,096"
        in messages
    )
    assert "job 2.pbs01.example.org: stored, name: not valid UTF-8, bad bytes replaced" in messages
    assert "job '3.pbs01.example.org': refused: no submit time" in messages
    assert "refused: job_id is not valid UTF-8 text" in messages
    rows = dict(_rows(store, "SELECT job_id, comment FROM jobs"))
    assert set(rows) == {f"{i}.pbs01.example.org" for i in (1, 2, 5, 6)}
    comment = str(rows["1.pbs01.example.org"])
    assert len(comment) == 4096
    assert comment.endswith("...[2,000,000 characters, truncated]")
    assert rows["5.pbs01.example.org"] == "nulinside"
    names = dict(_rows(store, "SELECT job_id, name FROM jobs"))
    assert names["2.pbs01.example.org"] == "sim\ufffd\ufffd_run"
    # The repaired job is unchanged at the next collection: no history, no rewrite.
    again = jobs.apply([_job(1, T0 + 30 * S, comment=huge)], complete=False)
    assert (again.unchanged, again.updated, again.history) == (1, 0, 0)


# ---------------------------------------------------------------- snapshots


def test_nodes_are_written_when_they_change_and_once_an_hour(
    store: Store, jobs: TrackedStore
) -> None:
    def node(t: int, state: str, jobs: tuple[str, ...] = ()) -> NodeRecord:
        return NodeRecord(
            cluster="aurora",
            scheduler="pbs",
            node="x4618c0s0b0n0",
            observed_ns=t,
            state=state,
            native_state="job-busy" if jobs else "free",
            cpus_total=208,
            cpus_allocated=208 if jobs else 0,
            jobs=jobs,
        )

    times = [T0 + k * 300 * S for k in range(20)]  # every 5 minutes for 95 minutes
    for k, t in enumerate(times):
        jobs.write([node(t, "allocated", ("1.pbs",)) if 3 <= k < 5 else node(t, "idle")])
    rows = _rows(store, "SELECT observed_ns, state, jobs FROM node_snapshots ORDER BY observed_ns")
    assert rows == [
        (times[0], "idle", None),
        (times[3], "allocated", "1.pbs"),
        (times[5], "idle", None),
        (times[17], "idle", None),  # an hour after the last row
    ]


def test_queue_and_system_records_are_kept_every_time(store: Store, jobs: TrackedStore) -> None:
    queue = QueueRecord(
        cluster="aurora",
        scheduler="pbs",
        queue="prod",
        observed_ns=T0,
        enabled=True,
        started=True,
        jobs_total=12,
        jobs_queued=5,
        jobs_running=6,
        jobs_held=1,
        state_counts=(("Transit", 0), ("Queued", 5), ("Held", 1), ("Running", 6)),
    )
    system = SystemRecord(
        cluster="aurora",
        scheduler="pbs",
        server="pbs01",
        observed_ns=T0,
        server_state="Active",
        jobs_total=12,
    )
    jobs.write([queue, system, dataclasses.replace(queue, observed_ns=T0 + S)])
    assert _rows(
        store, "SELECT observed_ns, jobs_queued, state_counts FROM queue_snapshots ORDER BY id"
    ) == [
        (T0, 5, '{"Transit":0,"Queued":5,"Held":1,"Running":6}'),
        (T0 + S, 5, '{"Transit":0,"Queued":5,"Held":1,"Running":6}'),
    ]
    assert _rows(store, "SELECT server, server_state FROM system_snapshots") == [
        ("pbs01", "Active")
    ]


def test_the_collection_and_its_log_entry_are_one_transaction(
    store: Store, jobs: TrackedStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    written = jobs.write([_job(1, T0), _job(2, T0), _event(T0)])
    assert written == 3
    assert _rows(store, "SELECT source, status FROM collection_log") == [("pbs", "ok")]
    # A collection whose last step fails leaves neither its jobs nor its log entry.
    import collectbus.store.snapshots as snapshots_module

    def broken(*_a: object, **_k: object) -> None:
        raise sa.exc.OperationalError("INSERT", {}, Exception("database or disk is full"))

    monkeypatch.setattr(snapshots_module, "bulk_insert", broken)
    node = NodeRecord(
        cluster="aurora",
        scheduler="pbs",
        node="x1",
        observed_ns=T0,
        state="idle",
        native_state="free",
    )
    with pytest.raises(StoreError, match="full"):
        jobs.write([_job(3, T0 + S), node, _event(T0 + S)])
    assert len(_rows(store, "SELECT * FROM collection_log")) == 1
    assert len(_rows(store, "SELECT * FROM jobs")) == 2
    assert len(_rows(store, "SELECT * FROM job_history")) == 2


def test_a_number_too_large_for_its_column_is_stored_as_null(
    store: Store, jobs: TrackedStore
) -> None:
    result = jobs.apply(
        [dataclasses.replace(_job(3, T0), priority=2**70), _job(4, T0)], complete=False
    )
    assert (result.inserted, result.repaired) == (2, 1)
    assert result.messages == [
        "cluster aurora job 3.pbs01.example.org: stored, priority: "
        "1180591620717411303424 does not fit a 64-bit integer, stored as NULL"
    ]
    assert _rows(store, "SELECT job_id, priority FROM jobs ORDER BY job_id") == [
        ("3.pbs01.example.org", None),
        ("4.pbs01.example.org", 0),
    ]


def test_evicted_jobs_are_found_again_in_the_database(store: Store, jobs: TrackedStore) -> None:
    done = {"state": "completed", "start_ns": T0, "end_ns": T0 + S}
    jobs.apply([_job(1, T0, **done), _job(2, T0)], complete=True)
    # Weeks later the clean-up keeps the finished job's row, and the tracker lets it go.
    store.cleanup(RetentionLimits(), now_ns=T0 + 30 * DAY)
    assert jobs.tracker.evict(T0 + 30 * DAY - CACHE_HORIZON_NS) == 1
    assert jobs.tracker.evict(T0 + 30 * DAY - CACHE_HORIZON_NS) == 0  # already let go
    # A late finished listing (sacct over a long window) names it again: no new row.
    result = jobs.apply([_job(1, T0 + 30 * DAY, **done)], complete=False)
    assert (result.inserted, result.history) == (0, 0)
    assert len(_rows(store, "SELECT * FROM jobs")) == 2


def test_a_job_is_found_by_its_id_through_an_index(sqlite_url: str) -> None:
    """``collectbus job ID`` and ``history --job ID`` must not scan years of rows."""
    from collectbus.store.jobquery import read_history, read_jobs

    with open_store(sqlite_url) as store:
        TrackedStore(store).apply([_job(i, T0) for i in range(200)], complete=False)
        with store.engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
        statements: list[str] = []

        def record(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
            statements.append(statement)

        sa.event.listen(store.engine, "before_cursor_execute", record)
        with store.jobs.reading() as conn:
            read_jobs(conn, job_id="7.pbs01.example.org")
            read_history(conn, job_id="7.pbs01.example.org")
        sa.event.remove(store.engine, "before_cursor_execute", record)
        queries = [q for q in statements if q.lstrip().upper().startswith("SELECT")]
        assert len(queries) == 2
        with store.engine.connect() as conn:
            for query in queries:
                plan = " ".join(
                    str(row[-1])
                    for row in conn.exec_driver_sql(
                        "EXPLAIN QUERY PLAN " + query, ("7.pbs01.example.org",)
                    )
                )
                assert "USING INDEX ix_jobs_job_id" in plan or "ix_job_history_job_id" in plan, plan
                assert "SCAN" not in plan.replace("SCAN CONSTANT ROW", ""), plan
