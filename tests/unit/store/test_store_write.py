"""``Store.write`` hands each record type to its writer, and refuses a type it
has no writer for before anything is written."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from collectbus.jobtrack.tracker import JobTracker
from collectbus.records import CollectionEvent, NodeRecord
from collectbus.store import Store
from collectbus.store import open as open_store
from collectbus.store.jobtables import SchedulerRows
from collectbus.store.store import WRITERS
from collectbus.testing.hosts import make_host_sample
from collectbus.testing.schedulers import make_pbs_job

S = 10**9
T0 = 1_795_000_000 * S


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(f"sqlite:///{tmp_path / 's.db'}")
    yield s
    s.close()


def _count(store: Store, table: str) -> int:
    with store.engine.connect() as conn:
        return int(conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one())


def _event(t: int) -> CollectionEvent:
    return CollectionEvent(source="pbs", host="h", started_ns=t, duration_ns=S, status="ok")


class NotARecord:
    pass


def test_an_unknown_record_type_is_a_clear_error_and_nothing_is_written(store: Store) -> None:
    with pytest.raises(TypeError, match=r"cannot write NotARecord; it writes .*HostSample"):
        store.write([make_host_sample("h", T0), NotARecord(), _event(T0)])  # type: ignore[list-item]
    assert _count(store, "collection_log") == 0
    assert _count(store, "host_stat") == 0


def test_raw_scheduler_records_are_sent_to_the_job_tracker(store: Store) -> None:
    node = NodeRecord(
        cluster="aurora", scheduler="pbs", node="x1", observed_ns=T0, state="idle", native_state=""
    )
    for record in (make_pbs_job(1, submit_ns=T0, observed_ns=T0), node):
        with pytest.raises(TypeError, match="job tracker"):
            store.write([record, _event(T0)])
    assert _count(store, "collection_log") == 0


def test_each_record_type_goes_to_its_writer(store: Store) -> None:
    tracked = JobTracker(store.jobs).track([make_pbs_job(1, submit_ns=T0, observed_ns=T0)])
    rows = tracked.rows
    written = store.write([make_host_sample("h", T0), rows, _event(T0)])
    assert written == 3  # the sample, the job the rows stand for, the event
    assert rows.stored
    assert (_count(store, "jobs"), _count(store, "job_history")) == (1, 1)
    assert (_count(store, "host_stat"), _count(store, "collection_log")) == (1, 1)
    # The collection's log line is written last, after every other writer.
    assert list(WRITERS)[-1] is CollectionEvent
    assert SchedulerRows in WRITERS
