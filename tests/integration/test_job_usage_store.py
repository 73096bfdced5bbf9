"""Per-job usage samples stored and read back on SQLite and PostgreSQL; values
the database cannot hold quarantined; migration 0015 down and up with data."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from collectbus.clock import FakeClock
from collectbus.collectors.base import CollectContext
from collectbus.collectors.jobusage.collector import JobUsageCollector
from collectbus.records import CollectionEvent, JobUsageSample
from collectbus.store import Store
from collectbus.store import open as open_store
from collectbus.store.jobusage import COLUMNS
from collectbus.store.migrate import alembic_config, upgrade

DATA = Path(__file__).resolve().parents[1] / "data" / "cgroup"
T0 = 1_796_600_000 * 10**9


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    with open_store(store_url) as s:
        yield s


def _collect(store: Store, tree: str, at_ns: int, *, proc: bool = True) -> list[JobUsageSample]:
    root = DATA / tree
    collector = JobUsageCollector(
        "hpc1",
        proc_root=root / "proc" if proc else root / "no-proc",
        cgroup_root=root / "sys/fs/cgroup",
        mode="auto" if proc else "cgroup",
    )
    ctx = CollectContext(host="node01", clock=FakeClock(start_ns=at_ns))
    samples = collector.collect(ctx)
    event = CollectionEvent(
        source="jobusage", host="node01", started_ns=at_ns, duration_ns=1,
        status="partial" if ctx.problems else "ok", records=len(samples),
        details=tuple(ctx.details),
    )  # fmt: skip
    assert store.write([*samples, event]) == len(samples) + 1
    return samples


def _as_row(sample: JobUsageSample) -> dict[str, object]:
    return {name: getattr(sample, name) for name in COLUMNS}


def test_samples_are_stored_and_read_back_per_job(store: Store) -> None:
    first = _collect(store, "pbs-v1-job", T0, proc=False)
    second = _collect(store, "pbs-v1-job", T0 + 10**10, proc=False)
    _collect(store, "slurm-v1-job", T0)
    rows = store.job_usage("hpc1", "1234.pbs01")
    expected = [s for s in (*first, *second) if s.job_id == "1234.pbs01"]
    assert len(expected) == 2
    assert rows == [_as_row(s) for s in expected]
    (slurm,) = store.job_usage("hpc1", "2")
    assert (slurm["source"], slurm["host"], slurm["read_bytes"]) == ("cgroup", "node01", None)
    assert store.job_usage("hpc1", "1234.pbs01", since_ns=T0 + 1) == [_as_row(expected[1])]
    assert store.job_usage("hpc1", "1234.pbs01", until_ns=T0 + 1) == [_as_row(expected[0])]
    assert store.job_usage("other", "1234.pbs01") == []
    assert store.job_usage("hpc1", "1234.pbs01", host="node02") == []
    assert store.status(exact=True)["tables"]["job_usage"] == 5


def test_a_value_the_column_cannot_hold_is_quarantined_and_the_row_kept(store: Store) -> None:
    bad = JobUsageSample(
        cluster="hpc1", job_id="9", host="node01", time_ns=T0, source="cgroup",
        cpu_seconds=1.5, mem_bytes=2**64, processes=2,
    )  # fmt: skip
    good = JobUsageSample(
        cluster="hpc1", job_id="10", host="node01", time_ns=T0, source="proctree", mem_bytes=7
    )
    store.write([bad, good])
    (row,) = store.job_usage("hpc1", "9")
    assert (row["mem_bytes"], row["cpu_seconds"], row["processes"]) == (None, 1.5, 2)
    assert store.job_usage("hpc1", "10")[0]["mem_bytes"] == 7
    held = store.status()["quarantine"]
    assert isinstance(held, dict)
    (entry,) = held["latest"]
    assert (entry["table_name"], entry["field"], entry["value"]) == (
        "job_usage", "mem_bytes", str(2**64)
    )  # fmt: skip


def test_migration_0015_downgrades_and_upgrades_with_data(store: Store) -> None:
    _collect(store, "pbs-v2-job", T0, proc=False)
    with store.engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0014")
    tables = set(sa.inspect(store.engine).get_table_names())
    assert "job_usage" not in tables
    assert {"reservations", "collection_log"} <= tables
    assert store.status(exact=True)["tables"]["collection_log"] == 1
    with store.engine.begin() as conn:
        upgrade(conn)
    assert store.job_usage("hpc1", "5678.pbs02") == []
    (sample,) = _collect(store, "pbs-v2-job", T0, proc=False)
    assert store.job_usage("hpc1", "5678.pbs02") == [_as_row(sample)]
