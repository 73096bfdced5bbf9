"""A job's life through the bus: queued, running, finished; the server down; back again.

The steps are replayed by the fake ``qstat`` (see ``tests/fakes/pbs/scenario.py``
for how each was derived from the recorded outputs). Each collection goes
through a real :class:`CollectionBus`, so the events are those the store sees.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from collectbus.bus import CollectionBus
from collectbus.bus.cache import Result
from collectbus.clock import FakeClock
from tests.fakes.pbs.scenario import JOB_A, JOB_B, JOB_C, SERVER, Scenario, build_scenario

NS = 1_000_000_000
# ctime "Tue Oct  4 21:23:20 2022" in Europe/Prague (CEST, UTC+2).
SUBMIT_NS = 1664911400 * NS


@pytest.fixture
def scenario(tmp_path: Path) -> Scenario:
    return build_scenario(tmp_path / "pbs")


@pytest.fixture
def bus(scenario: Scenario) -> Iterator[CollectionBus]:
    clock = FakeClock(start_ns=1664911500 * NS)
    bus = CollectionBus(host="collector-host", clock=clock)
    bus.add(scenario.jobs_collector(), tier="inventory", interval=60, timeout=30)
    yield bus
    bus.stop()


def step(scenario: Scenario, bus: CollectionBus, name: str) -> Result:
    scenario.activate(name)
    return bus.collect_now("pbs-jobs")


def test_a_jobs_life_with_an_outage(scenario: Scenario, bus: CollectionBus) -> None:
    queued = step(scenario, bus, "queued")
    assert queued.event.status == "ok"
    details = dict(queued.event.details)
    assert (details["job_listing"], details["history"], details["jobs"]) == ("complete", "on", "2")
    assert details["server"] == SERVER
    assert (details["parsed"], details["reused"]) == ("2", "0")
    jobs = {r.job_id: r for r in queued.records}  # type: ignore[union-attr]
    a, b = jobs[JOB_A], jobs[JOB_B]
    assert (a.state, a.native_state, a.substate) == ("queued", "Q", "10")
    assert (a.submit_ns, a.start_ns, a.exec_hosts) == (SUBMIT_NS, None, ())
    assert (b.state, b.cluster) == ("held", "metacentrum")

    running = step(scenario, bus, "running")
    assert running.event.status == "ok"
    assert dict(running.event.details)["parsed"] == "1"  # job B did not change
    a = {r.job_id: r for r in running.records}[JOB_A]  # type: ignore[union-attr]
    assert (a.state, a.substate) == ("running", "41")
    assert a.start_ns == SUBMIT_NS + 13 * NS
    assert a.exec_hosts == ("charon24", "charon21")

    finished = step(scenario, bus, "finished")
    jobs = {r.job_id: r for r in finished.records}  # type: ignore[union-attr]
    a, b = jobs[JOB_A], jobs[JOB_B]
    assert (a.state, a.native_state, a.exit_status, a.exit_signal) == ("completed", "F", 0, None)
    assert a.end_ns == SUBMIT_NS + 75 * NS  # obittime 21:24:35
    assert (a.walltime_used_seconds, a.cpu_used_seconds) == (62, 110)
    assert a.mem_used_bytes == 1024**3
    assert (b.state, b.substate, b.exit_status) == ("cancelled", "91", None)
    assert dict(finished.event.details)["job_listing"] == "complete"

    down = step(scenario, bus, "down")
    assert down.event.status == "error"
    assert down.event.error is not None
    assert f"qstat -x -f -F json @{SERVER} on server {SERVER}" in down.event.error
    assert "exited with status 255: qstat: cannot connect to server" in down.event.error
    assert down.stale  # the last good records, marked stale: nothing looks vanished
    assert down.records == finished.records
    assert down.event.details == ()  # no listing at all
    assert bus.health().collectors[0].consecutive_failures == 1

    back = step(scenario, bus, "recovered")
    assert back.event.status == "ok"
    assert not back.stale
    details = dict(back.event.details)
    assert (details["jobs"], details["parsed"], details["reused"]) == ("3", "1", "2")
    jobs = {r.job_id: r for r in back.records}  # type: ignore[union-attr]
    assert jobs[JOB_C].state == "queued"
    assert jobs[JOB_A].state == "completed"
    assert bus.health().collectors[0].consecutive_failures == 0
    assert scenario.calls() == [f"qstat -x -f -F json @{SERVER}"] * 5


def test_each_step_output_is_what_the_fake_prints(scenario: Scenario) -> None:
    collector = scenario.jobs_collector()
    for name in ("queued", "running", "finished", "recovered"):
        scenario.activate(name)
        payload = collector.runner.run(collector.argv()).stdout
        assert payload == scenario.output(name)


def test_walking_the_steps_gives_one_event_per_step(scenario: Scenario, bus: CollectionBus) -> None:
    results = dict(scenario.walk(lambda: bus.collect_now("pbs-jobs")))
    assert list(results) == ["queued", "running", "finished", "down", "recovered"]
    statuses = {step: r.event.status for step, r in results.items()}
    assert statuses == {
        "queued": "ok",
        "running": "ok",
        "finished": "ok",
        "down": "error",
        "recovered": "ok",
    }
    listings = {step: dict(r.event.details).get("job_listing") for step, r in results.items()}
    assert listings["down"] is None
    assert {v for k, v in listings.items() if k != "down"} == {"complete"}
    assert [len(r.records) for r in results.values()] == [2, 2, 2, 2, 3]
