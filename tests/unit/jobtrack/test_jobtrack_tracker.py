"""The job tracker on its own: scheduler snapshots in, rows and state changes
out, with no store (what a store holds is a list of stored jobs)."""

from __future__ import annotations

import dataclasses

import pytest

from collectbus.jobtrack.identity import NO_SUBMIT, job_key
from collectbus.jobtrack.rows import tracked_text
from collectbus.jobtrack.tracker import LAST_SEEN_EVERY_NS, JobTracker
from collectbus.records import JobRecord, NodeRecord
from collectbus.store.jobrows import COL, JOB_COLUMNS
from collectbus.store.jobtables import StoredJob
from collectbus.store.snapshots import NODE_KEYFRAME_NS
from collectbus.testing.schedulers import make_pbs_job

S = 10**9
T0 = 1_795_000_000 * S
SUBMIT = T0 - 100 * S


class Held:
    """What a store would hold: stored jobs per cluster, and the reads asked of it."""

    def __init__(self, jobs: dict[str, list[StoredJob]] | None = None) -> None:
        self.jobs = jobs or {}
        self.reads: list[tuple[str, str, object]] = []

    def current(self, cluster: str, *, ended_since_ns: int | None) -> list[StoredJob]:
        self.reads.append(("current", cluster, ended_since_ns))
        return list(self.jobs.get(cluster, []))

    def named(self, cluster: str, job_ids: list[str]) -> list[StoredJob]:
        self.reads.append(("named", cluster, tuple(job_ids)))
        return [j for j in self.jobs.get(cluster, []) if j.job_id in job_ids]


def _job(number: int, t: int, **kw: object) -> JobRecord:
    return make_pbs_job(number, submit_ns=SUBMIT, observed_ns=t, **kw)  # type: ignore[arg-type]


def _stored_from(rows: dict[tuple[str, str, int], list[object]]) -> dict[str, list[StoredJob]]:
    """The jobs a store holds after writing ``rows`` (``jobs`` rows by key)."""
    out: dict[str, list[StoredJob]] = {}
    for (cluster, job_id, submit_ns), row in rows.items():
        first, last = row[COL["first_seen_ns"]], row[COL["last_seen_ns"]]
        assert isinstance(first, int)
        assert isinstance(last, int)
        out.setdefault(cluster, []).append(
            StoredJob(job_id, submit_ns, tracked_text(row), first, last)
        )
    return out


def test_a_first_snapshot_is_all_inserts_each_with_its_first_state() -> None:
    tracker = JobTracker(Held())
    tracked = tracker.track([_job(1, T0), _job(2, T0, state="running", start_ns=T0)])
    rows = tracked.rows
    assert sorted(rows.inserts) == [
        ("aurora", "1.pbs01.example.org", SUBMIT),
        ("aurora", "2.pbs01.example.org", SUBMIT),
    ]
    assert all(len(row) == len(JOB_COLUMNS) for row in rows.inserts.values())
    assert sorted((h[1], h[4], h[5], h[6], h[7]) for h in rows.history) == [
        ("1.pbs01.example.org", "state", None, "queued", "first seen"),
        ("2.pbs01.example.org", "state", None, "running", "first seen"),
    ]
    assert (tracked.result.inserted, tracked.result.history, rows.records) == (2, 2, 2)
    assert not rows.updates
    assert not rows.vanished
    assert not rows.touches


def test_nothing_changes_until_commit() -> None:
    tracker = JobTracker(Held())
    first = tracker.track([_job(1, T0)])
    # Not written (a failed transaction): the same snapshot is new again.
    again = tracker.track([_job(1, T0)])
    assert list(again.rows.inserts) == list(first.rows.inserts)
    tracker.commit(again)
    same = tracker.track([_job(1, T0 + 30 * S)])
    assert (same.result.unchanged, same.result.inserted) == (1, 0)
    assert not same.rows.inserts
    assert not same.rows.updates
    assert not same.rows.history


def test_each_change_of_a_tracked_field_is_one_state_change() -> None:
    tracker = JobTracker(Held())
    tracker.commit(tracker.track([_job(1, T0)]))
    tracked = tracker.track([_job(1, T0 + 30 * S, state="held", priority=7)])
    changes = sorted((h[4], h[5], h[6]) for h in tracked.rows.history)
    # PBS puts the hold in the substate too (Q -> H).
    assert ("priority", "0", "7") in changes
    assert ("state", "queued", "held") in changes
    assert all(h[3] == T0 + 30 * S for h in tracked.rows.history)
    assert tracked.result.updated == 1
    assert list(tracked.rows.updates) == [("aurora", "1.pbs01.example.org", SUBMIT)]


def test_a_job_gone_from_a_complete_listing_disappears_and_a_partial_one_marks_nothing() -> None:
    tracker = JobTracker(Held())
    tracker.commit(tracker.track([_job(1, T0), _job(2, T0)], listed={"aurora"}))
    partial = tracker.track([_job(2, T0 + 30 * S)], now_ns=T0 + 30 * S)
    assert partial.rows.vanished == []
    assert partial.result.disappeared == 0
    complete = tracker.track([_job(2, T0 + 30 * S)], listed={"aurora"}, now_ns=T0 + 30 * S)
    assert complete.rows.vanished == [("disappeared", "aurora", "1.pbs01.example.org", SUBMIT)]
    assert [(h[4], h[5], h[6], h[7]) for h in complete.rows.history] == [
        ("state", "queued", "disappeared", "gone from a complete listing with no end seen")
    ]
    tracker.commit(complete)
    done = {"state": "completed", "start_ns": T0, "end_ns": T0 + 40 * S}
    late = tracker.track([_job(1, T0 + 60 * S, **done)])
    assert ("state", "disappeared", "completed", "end seen after the job disappeared") in [
        (h[4], h[5], h[6], h[7]) for h in late.rows.history
    ]


def test_a_restarted_tracker_goes_on_from_what_the_store_holds() -> None:
    first = JobTracker(Held())
    tracked = first.track([_job(1, T0), _job(2, T0)], listed={"aurora"})
    held = Held(_stored_from(tracked.rows.inserts))
    restarted = JobTracker(held)
    later = restarted.track([_job(1, T0 + 60 * S, state="held")], listed={"aurora"}, now_ns=T0)
    assert held.reads[0][:2] == ("current", "aurora")
    assert later.result.inserted == 0
    assert later.result.disappeared == 1  # job 2, known only from the store
    assert ("state", "queued", "held") in [(h[4], h[5], h[6]) for h in later.rows.history]


def test_an_unchanged_job_is_touched_only_when_due() -> None:
    tracker = JobTracker(Held())
    tracker.commit(tracker.track([_job(1, T0)]))
    soon = tracker.track([_job(1, T0 + 60 * S)])
    assert soon.rows.touches == []
    due = tracker.track([_job(1, T0 + LAST_SEEN_EVERY_NS)])
    assert due.rows.touches == [(T0 + LAST_SEEN_EVERY_NS, "aurora", "1.pbs01.example.org", SUBMIT)]


# ---------------------------------------------------------------- identity


def test_the_identity_of_a_record_without_submit_time_is_the_newest_job_of_its_id() -> None:
    record = dataclasses.replace(_job(1, T0), submit_ns=None)
    assert job_key(record, {"1.pbs01.example.org": SUBMIT}) == ("1.pbs01.example.org", SUBMIT)
    assert job_key(record, {}) == ("1.pbs01.example.org", NO_SUBMIT)
    assert job_key(_job(1, T0), {"1.pbs01.example.org": SUBMIT + S}) == (
        "1.pbs01.example.org",
        SUBMIT,
    )


def test_identity_is_decided_after_the_store_is_asked_for_unknown_ids() -> None:
    stored = StoredJob("1.pbs01.example.org", SUBMIT, ("running",) + (None,) * 5, T0, T0)
    held = Held({"aurora": [stored]})
    tracker = JobTracker(held)
    tracker.commit(tracker.track([], listed=(), now_ns=None))
    late = dataclasses.replace(
        _job(1, T0 + S, state="completed", start_ns=T0, end_ns=T0 + S), submit_ns=None
    )
    orphan = dataclasses.replace(_job(9, T0 + S), submit_ns=None)
    tracked = tracker.track([late, orphan])
    assert list(tracked.rows.updates) == [("aurora", "1.pbs01.example.org", SUBMIT)]
    assert tracked.result.refused == 1
    assert "no submit time" in tracked.result.messages[0]


def test_a_reused_id_with_a_new_submit_time_is_a_new_job() -> None:
    tracker = JobTracker(Held())
    tracker.commit(tracker.track([_job(1, T0)]))
    new = make_pbs_job(1, submit_ns=T0 + 10 * S, observed_ns=T0 + 20 * S)
    tracked = tracker.track([new])
    assert list(tracked.rows.inserts) == [("aurora", "1.pbs01.example.org", T0 + 10 * S)]
    assert not tracked.rows.updates


# ---------------------------------------------------------------- nodes


@pytest.mark.parametrize("state", ["idle", "down"])
def test_a_node_row_is_written_when_it_changes_and_once_an_hour(state: str) -> None:
    tracker = JobTracker(Held())

    def node(t: int, node_state: str = "idle") -> NodeRecord:
        return NodeRecord(
            cluster="aurora",
            scheduler="pbs",
            node="x1",
            observed_ns=t,
            state=node_state,
            native_state="free",
        )

    tracker.commit(first := tracker.track([node(T0)]))
    assert len(first.rows.nodes) == 1
    assert first.result.snapshots == 1
    same = tracker.track([node(T0 + 60 * S, "idle")])
    changed = tracker.track([node(T0 + 60 * S, state)])
    assert len(changed.rows.nodes) == (state != "idle")
    assert same.rows.nodes == []
    keyframe = tracker.track([node(T0 + NODE_KEYFRAME_NS)])
    assert len(keyframe.rows.nodes) == 1
