"""The daemon's store writer with scheduler records: jobs stored with their
collection, retention applied on schedule, privacy settings passed on."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from collectbus.bus import Result
from collectbus.clock import NS_PER_S, FakeClock
from collectbus.config import load_config
from collectbus.pipeline import Pipeline
from collectbus.pipeline.sink import StoreSink
from collectbus.records import COMPLETE_LISTING, CollectionEvent, JobRecord
from collectbus.store import Store
from collectbus.store import open as open_store
from collectbus.store.retention import RetentionLimits
from collectbus.testing.schedulers import make_pbs_job

START_NS = 1_800_000_000 * NS_PER_S
DAY = 86400 * NS_PER_S


def _result(seq: int, jobs: list[JobRecord], t: int) -> Result:
    event = CollectionEvent(
        source="pbs",
        host="pbs01",
        started_ns=t,
        duration_ns=1000,
        status="ok",
        records=len(jobs),
        details=(COMPLETE_LISTING, ("cluster", "aurora")),
    )
    return Result(
        collector="pbs", seq=seq, tick_ns=t, records=tuple(jobs), event=event, stale=False
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start_ns=START_NS)


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> Iterator[Store]:
    s = open_store(f"sqlite:///{tmp_path / 's.db'}", clock=clock)
    yield s
    s.close()


def _count(store: Store, sql: str) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(sa.text(sql)).scalar_one())


def test_the_sink_stores_jobs_and_applies_retention_on_schedule(
    store: Store, clock: FakeClock
) -> None:
    sink = StoreSink(
        store,
        clock=clock,
        compact_after_s=3600,
        compact_every_s=600,
        retention=RetentionLimits(job_history_days=30, jobs_days=30),
        retention_every_s=3600,
    )
    old = START_NS - 60 * DAY
    done = make_pbs_job(
        1, submit_ns=old - NS_PER_S, observed_ns=old, state="completed", start_ns=old
    )
    sink(_result(1, [done], old))
    # The first write runs the clean-up: the 60-day-old job and its history go.
    assert sink.cleanups == 1
    assert _count(store, "SELECT count(*) FROM jobs") == 0
    sink(_result(2, [make_pbs_job(2, submit_ns=START_NS, observed_ns=START_NS)], START_NS))
    assert sink.cleanups == 1  # not due again for an hour
    assert _count(store, "SELECT count(*) FROM jobs") == 1
    assert _count(store, "SELECT count(*) FROM collection_log") == 2
    clock.advance(3600 * NS_PER_S)
    sink(
        _result(
            3,
            [make_pbs_job(2, submit_ns=START_NS, observed_ns=START_NS + 3600 * NS_PER_S)],
            START_NS + 3600 * NS_PER_S,
        )
    )
    assert sink.cleanups == 2
    assert _count(store, "SELECT count(*) FROM jobs") == 1


def test_the_pipeline_passes_the_privacy_setting_to_the_job_tracker(tmp_path: Path) -> None:
    config_file = tmp_path / "collectbus.toml"
    config_file.write_text(
        "[collectors.host]\nenabled = false\n[privacy]\nscrub = true\n"
        "[retention]\njob_history_days = 400\njobs_days = 500\n"
    )
    config = load_config(
        config_file, overrides={"store.url": f"sqlite:///{tmp_path / 'p.db'}"}, env={}
    )
    pipeline = Pipeline(config, clock=FakeClock(start_ns=START_NS))
    try:
        assert pipeline.sink.jobs.tracker.scrub is True
        assert pipeline.sink.retention == RetentionLimits(
            job_history_days=400,
            snapshot_days=90,
            jobs_days=500,
            collection_log_days=90,
            quarantine_days=90,
        )
        pipeline.sink(
            _result(1, [make_pbs_job(1, submit_ns=START_NS, observed_ns=START_NS)], START_NS)
        )
        with pipeline.store.engine.connect() as conn:
            raw = json.loads(conn.execute(sa.text("SELECT raw_json FROM jobs")).scalar_one())
        assert raw["Job_Owner"] == "[scrubbed]"
        assert raw["Variable_List"] == "[scrubbed]"
    finally:
        pipeline.store.close()


def test_a_bad_retention_setting_names_its_key(tmp_path: Path) -> None:
    config_file = tmp_path / "collectbus.toml"
    config_file.write_text("[retention]\nsnapshot_days = -3\n")
    from collectbus.errors import ConfigError

    with pytest.raises(ConfigError, match=r"retention\.snapshot_days"):
        load_config(config_file, env={})
