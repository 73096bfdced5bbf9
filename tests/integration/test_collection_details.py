"""What each collection noted, kept in ``collection_log.details``; and the
job-listing contract of the Slurm collector, through the daemon's store writer.

Real SQLite and PostgreSQL (the ``store_url`` fixture), real subprocesses for
the fake ``qstat``/``squeue``/``sacct``; the ``collectbus`` command runs in this
process, as its entry point runs it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from sqlalchemy import inspect, select, text

from collectbus.bus import CollectionBus
from collectbus.clock import FakeClock
from collectbus.collectors.pbs.collector import PbsJobsCollector
from collectbus.collectors.run import LocalRunner
from collectbus.collectors.slurm.collector import SlurmJobsCollector, SlurmSettings
from collectbus.pipeline.sink import StoreSink
from collectbus.records import CollectionEvent
from collectbus.store import Store
from collectbus.store import open as open_store
from collectbus.store.migrate import alembic_config, upgrade
from collectbus.store.schema import collection_log, jobs
from collectbus.store.store import make_engine
from tests.fakes.pbs.scenario import stage
from tests.integration.cli_helpers import collectbus_env, collectbus_in_process

TESTS = Path(__file__).resolve().parents[1]
SLURM_FAKES = TESTS / "fakes" / "slurm"
SLURM_DATA = TESTS / "data" / "slurm"
PBS_FAKES = TESTS / "fakes" / "pbs"
QUIRKS = TESTS / "data" / "pbs" / "quirks"
NS = 1_000_000_000


def _event(details: tuple[tuple[str, str], ...]) -> CollectionEvent:
    return CollectionEvent(
        source="pbs-jobs",
        host="h",
        started_ns=1_800_000_000 * NS,
        duration_ns=5_000_000,
        status="ok",
        details=details,
    )


def _raw_details(store: Store) -> list[str | None]:
    with store.jobs.reading() as conn:
        rows = conn.execute(select(collection_log.c.details).order_by(collection_log.c.id))
        return [row[0] for row in rows]


def test_details_are_a_json_object_in_collection_log(store_url: str) -> None:
    store = open_store(store_url)
    try:
        store.write([_event((("server", "pbs1"), ("repaired", "a"), ("repaired", "b")))])
        store.write([_event(())])
        raw = _raw_details(store)
        assert json.loads(str(raw[0])) == {"server": "pbs1", "repaired": "a; b"}
        assert raw[1] is None  # nothing noted: NULL
        log = store.collection_log()
        assert [r["details"] for r in log] == [{"server": "pbs1", "repaired": "a; b"}, {}]
    finally:
        store.close()


def test_migration_0006_adds_the_column_and_keeps_the_rows(store_url: str) -> None:
    engine = make_engine(store_url)
    try:
        with engine.begin() as conn:
            upgrade(conn, "0005")
            assert "details" not in {c["name"] for c in inspect(conn).get_columns("collection_log")}
            conn.execute(
                text(
                    "INSERT INTO collection_log (source, host, started_ns, duration_ns, status,"
                    " records, error, stale) VALUES ('host', 'h', 1, 2, 'ok', 3, NULL, false)"
                )
            )
    finally:
        engine.dispose()
    store = open_store(store_url)  # migrates to the head
    try:
        (old,) = store.collection_log()
        assert (old["source"], old["records"], old["details"]) == ("host", 3, {})
        store.write([_event((("jobs", "2"),))])
        assert store.collection_log()[-1]["details"] == {"jobs": "2"}
    finally:
        store.close()
    engine = make_engine(store_url)
    try:
        with engine.begin() as conn:
            from alembic import command

            command.downgrade(alembic_config(conn), "0005")
            assert "details" not in {c["name"] for c in inspect(conn).get_columns("collection_log")}
            assert conn.execute(text("SELECT count(*) FROM collection_log")).scalar_one() == 2
    finally:
        engine.dispose()


def test_what_was_repaired_shows_in_db_status(tmp_path: Path, store_url: str) -> None:
    env = stage(tmp_path / "pbs", "jobs", QUIRKS / "invalid_escape_issue2049.json")
    clock = FakeClock(start_ns=1_800_000_000 * NS)
    bus = CollectionBus(host="h", clock=clock)
    runner = LocalRunner(env={**os.environ, **env})
    bus.add(PbsJobsCollector(bin_dir=str(PBS_FAKES), runner=runner), interval=60, timeout=30)
    store = open_store(store_url)
    try:
        StoreSink(store, clock=clock, compact_after_s=3600, compact_every_s=3600)(
            bus.collect_now("pbs-jobs")
        )
        (entry,) = store.collection_log()
        repaired = entry["details"]["repaired"]
        assert "escape" in repaired, repaired
    finally:
        bus.stop()
        store.close()
    result = collectbus_in_process(
        "db", "status", cwd=tmp_path, env=collectbus_env(tmp_path, store_url)
    )
    assert result.returncode == 0, result.stderr
    assert "pbs-jobs" in result.stdout
    assert "repaired=" in result.stdout, result.stdout
    as_json = collectbus_in_process(
        "db", "status", "--format", "json", cwd=tmp_path, env=collectbus_env(tmp_path, store_url)
    )
    assert as_json.returncode == 0, as_json.stderr
    (shown,) = json.loads(as_json.stdout)["latest_collections"]
    assert shown["details"]["repaired"] == repaired


def _slurm(store: Store, clock: FakeClock, squeue: str, sacct: str, accounting: str) -> str:
    """One slurm-jobs collection through a bus and the daemon's writer; its status."""
    runner = LocalRunner(
        timeout=10,
        env={
            **os.environ,
            "FAKE_SLURM_DATA": str(SLURM_DATA),
            "FAKE_SLURM_MODE": squeue,
            "FAKE_SACCT_MODE": sacct,
        },
    )
    settings = SlurmSettings(bin_dir=str(SLURM_FAKES), cluster="c", accounting=accounting)  # type: ignore[arg-type]
    bus = CollectionBus(host="h", clock=clock)
    bus.add(SlurmJobsCollector(settings, runner=runner), interval=60, timeout=30)
    try:
        result = bus.collect_now("slurm-jobs")
    finally:
        bus.stop()
    StoreSink(store, clock=clock, compact_after_s=3600, compact_every_s=3600)(result)
    clock.advance(60 * NS)
    return result.event.status


def _states(store: Store) -> dict[str, str]:
    with store.jobs.reading() as conn:
        rows = conn.execute(select(jobs.c.job_id, jobs.c.state).where(jobs.c.cluster == "c"))
        return {str(job_id): str(state) for job_id, state in rows}


def test_a_failed_squeue_marks_nothing_disappeared(store_url: str) -> None:
    clock = FakeClock(start_ns=1_800_000_000 * NS)
    store = open_store(store_url)
    try:
        assert _slurm(store, clock, "pending", "json", "none") == "ok"
        live = _states(store)
        assert live == {
            "1": "queued",
            "2": "queued",
            "3": "queued",
            "4": "queued",
            "5": "held",
            "6": "queued",
        }
        assert store.collection_log()[-1]["details"] == {"cluster": "c", "job_listing": "complete"}
        # squeue cannot reach slurmctld: an error, no listing, nothing gone.
        assert _slurm(store, clock, "fail", "json", "none") == "error"
        failed = store.collection_log()[-1]
        assert "squeue --json" in str(failed["error"])
        assert failed["details"] == {}
        assert _states(store) == live
        # squeue lists nothing but sacct fails: the collection is partial, and
        # marks nothing either.
        assert _slurm(store, clock, "empty", "fail", "slurmdbd") == "partial"
        assert store.collection_log()[-1]["details"]["job_listing"] == "complete"
        assert _states(store) == live
        # An empty listing, whole: every job is gone from it.
        assert _slurm(store, clock, "empty", "json", "none") == "ok"
        assert _states(store) == dict.fromkeys(live, "disappeared")
    finally:
        store.close()
