"""The PBS scenario end to end: fake ``qstat`` -> bus -> the daemon's store writer.

queued -> running -> finished -> server down (exit 255) -> recovered, each
step collected by a real :class:`CollectionBus` and written by
:class:`~collectbus.pipeline.sink.StoreSink` (the daemon's write path) to SQLite and
PostgreSQL. The rows of ``job_history`` and ``collection_log`` are checked
step by step; the outage marks nothing disappeared. A partial listing (text
cut from the output) marks nothing disappeared either.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from collectbus.bus import CollectionBus
from collectbus.clock import FakeClock
from collectbus.pipeline.sink import StoreSink
from collectbus.store import Store
from collectbus.store import open as open_store
from collectbus.store.schema import job_history, jobs
from tests.fakes.pbs.scenario import (
    JOB_A,
    JOB_B,
    JOB_C,
    SERVER,
    STEPS,
    Scenario,
    build_scenario,
    pbs_dumps,
)

NS = 1_000_000_000
START_NS = 1664911500 * NS
STEP_NS = 60 * NS
# ctime "Tue Oct  4 21:23:20 2022" in Europe/Prague (CEST, UTC+2).
SUBMIT_NS = 1664911400 * NS
CLUSTER = "metacentrum"


class Replay:
    """The scenario, a bus on a fake clock and the daemon's store writer."""

    def __init__(self, scenario: Scenario, store: Store, **settings: bool) -> None:
        self.scenario = scenario
        self.store = store
        self.clock = FakeClock(start_ns=START_NS)
        self.bus = CollectionBus(host="collector-host", clock=self.clock)
        self.bus.add(scenario.jobs_collector(**settings), tier="inventory", interval=60, timeout=30)
        self.sink = StoreSink(store, clock=self.clock, compact_after_s=3600, compact_every_s=3600)

    def step(self, name: str) -> int:
        """Collect step ``name`` and store it; return the time it was observed."""
        self.scenario.activate(name)
        at = self.clock.time_ns()
        self.sink(self.bus.collect_now("pbs-jobs"))
        self.clock.advance(STEP_NS)
        return at

    def history(self, since_id: int = 0) -> list[tuple[object, ...]]:
        c = job_history.c
        query = (
            select(c.id, c.job_id, c.observed_ns, c.field, c.old_value, c.new_value, c.note)
            .where(c.cluster == CLUSTER, c.id > since_id)
            .order_by(c.id)
        )
        with self.store.jobs.reading() as conn:
            return [tuple(row) for row in conn.execute(query)]

    def states(self) -> dict[str, str]:
        with self.store.jobs.reading() as conn:
            rows = conn.execute(
                select(jobs.c.job_id, jobs.c.state).where(jobs.c.cluster == CLUSTER)
            )
            return {str(job_id): str(state) for job_id, state in rows}


@pytest.fixture
def replay(tmp_path: Path, store_url: str) -> Iterator[Replay]:
    store = open_store(store_url)
    run = Replay(build_scenario(tmp_path / "pbs"), store)
    yield run
    run.bus.stop()
    store.close()


def _changes(rows: list[tuple[object, ...]]) -> list[tuple[object, ...]]:
    """History rows without their ids, sorted by job and field."""
    return sorted((r[1:] for r in rows), key=lambda r: (str(r[0]), str(r[2])))


def test_each_step_writes_exactly_its_history_and_log(replay: Replay) -> None:
    t_queued = replay.step("queued")
    rows = replay.history()
    assert _changes(rows) == [
        (JOB_A, t_queued, "state", None, "queued", "first seen"),
        (JOB_B, t_queued, "state", None, "held", "first seen"),
    ]
    last = max(int(str(r[0])) for r in rows)

    t_running = replay.step("running")
    rows = replay.history(last)
    # Job A starts on two hosts, with the comment the scheduler gives a
    # running job; held job B did not change: no row.
    assert _changes(rows) == [
        (
            JOB_A,
            t_running,
            "comment",
            None,
            "Job run at Tue Oct 04 at 21:23 on (charon24:ncpus=2:mem=4194304kb)+(charon21:ncpus=2:mem=4194304kb)",
            None,
        ),
        (JOB_A, t_running, "exec_hosts", None, "charon24,charon21", None),
        (JOB_A, t_running, "state", "queued", "running", None),
        (JOB_A, t_running, "substate", "10", "41", None),
    ]
    last = max(int(str(r[0])) for r in rows)

    t_finished = replay.step("finished")
    rows = replay.history(last)
    assert _changes(rows) == [
        (JOB_A, t_finished, "state", "running", "completed", None),
        (JOB_A, t_finished, "substate", "41", "92", None),
        (JOB_B, t_finished, "state", "held", "cancelled", None),
        (JOB_B, t_finished, "substate", "20", "91", None),
    ]
    last = max(int(str(r[0])) for r in rows)

    replay.step("down")
    assert replay.history(last) == []  # the outage changes nothing, marks nothing gone

    t_recovered = replay.step("recovered")
    rows = replay.history(last)
    assert _changes(rows) == [(JOB_C, t_recovered, "state", None, "queued", "first seen")]
    assert replay.states() == {JOB_A: "completed", JOB_B: "cancelled", JOB_C: "queued"}
    assert not any(r[5] == "disappeared" for r in replay.history())

    log = replay.store.collection_log()
    assert [(r["source"], r["status"], r["stale"]) for r in log] == [
        ("pbs-jobs", "ok", False),
        ("pbs-jobs", "ok", False),
        ("pbs-jobs", "ok", False),
        ("pbs-jobs", "error", True),  # the last good records served again: not rewritten
        ("pbs-jobs", "ok", False),
    ]
    assert [r["started_ns"] for r in log] == [START_NS + k * STEP_NS for k in range(len(STEPS))]
    assert [r["records"] for r in log] == [2, 2, 2, 0, 3]
    down = log[3]
    assert f"/qstat -x -f -F json @{SERVER} on server {SERVER}: " in str(down["error"])
    assert "exited with status 255: qstat: cannot connect to server" in str(down["error"])
    assert down["details"] == {}
    for entry, parsed, reused in zip(
        (log[0], log[1], log[2], log[4]), ("2", "1", "2", "1"), ("0", "1", "0", "2"), strict=True
    ):
        assert entry["error"] is None
        assert entry["details"] == {
            "server": SERVER,
            "history": "on",
            "jobs": str(entry["records"]),
            "parsed": parsed,
            "reused": reused,
            "cluster": CLUSTER,
            "job_listing": "complete",
        }


def test_a_partial_listing_marks_nothing_disappeared(replay: Replay) -> None:
    scenario = replay.scenario
    replay.step("queued")
    # The running listing without job B, with a warning printed ahead of the
    # JSON: the text is cut, so the listing is partial.
    partial = scenario.root / "partial"
    partial.mkdir()
    (partial / "server_name").write_text(SERVER)
    doc = json.loads(scenario.output("queued"))
    del doc["Jobs"][JOB_B]
    (partial / "jobs_history.json").write_bytes(
        b"qstat: Warning: the server is busy\n" + pbs_dumps(doc)
    )
    only_a = Scenario(scenario.root, steps=(*STEPS, "partial"))
    only_a.activate("partial")
    at = replay.clock.time_ns()
    replay.sink(replay.bus.collect_now("pbs-jobs"))
    entry = replay.store.collection_log()[-1]
    assert entry["status"] == "partial"
    assert entry["details"]["job_listing"] == "partial"
    assert "text around the JSON" in entry["details"]["repaired"]
    assert replay.states() == {JOB_A: "queued", JOB_B: "held"}
    assert [r for r in replay.history() if r[2] == at] == []
    # The same listing, whole: now job B is gone from a complete listing.
    (partial / "jobs_history.json").write_bytes(pbs_dumps(doc))
    replay.sink(replay.bus.collect_now("pbs-jobs"))
    assert replay.store.collection_log()[-1]["details"]["job_listing"] == "complete"
    assert replay.states() == {JOB_A: "queued", JOB_B: "disappeared"}


def test_records_given_again_take_the_collections_time(tmp_path: Path, store_url: str) -> None:
    """As the daemon runs it (``renew_unchanged = false``): an unchanged job's
    record is the one given last time, and the store takes the collection's time."""
    store = open_store(store_url)
    scenario = build_scenario(tmp_path / "pbs")
    replay = Replay(scenario, store, renew_unchanged=False)
    try:
        first = replay.step("queued")
        replay.clock.advance(10 * STEP_NS)  # past the store's LAST_SEEN_EVERY_NS (10 min)
        again = replay.step("queued")
        result = replay.bus.snapshot()["pbs-jobs"]
        assert {r.observed_ns for r in result.records} == {first}  # the very same records
        with store.jobs.reading() as conn:
            rows = conn.execute(
                select(jobs.c.job_id, jobs.c.first_seen_ns, jobs.c.last_seen_ns)
            ).all()
        assert sorted((str(j), f, seen) for j, f, seen in rows) == [
            (JOB_A, first, again),
            (JOB_B, first, again),
        ]
        assert len(replay.history()) == 2  # first seen, nothing else
    finally:
        replay.bus.stop()
        store.close()
