"""The store writer of the daemon: one collection per write, compaction, failures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from collectbus.bus import Result
from collectbus.clock import NS_PER_S, FakeClock
from collectbus.daemon import StoreSink
from collectbus.errors import StoreError
from collectbus.records import CollectionEvent
from collectbus.store import Store
from collectbus.store import open as open_store
from collectbus.testing import make_host_sample

START_NS = 1_800_000_000 * NS_PER_S


def _result(seq: int, time_ns: int, *, stale: bool = False) -> Result:
    sample = make_host_sample("h1", time_ns)
    event = CollectionEvent(
        source="host",
        host="h1",
        started_ns=time_ns,
        duration_ns=1000,
        status="error" if stale else "ok",
        records=1,
        error="boom" if stale else None,
        stale=stale,
    )
    return Result(
        collector="host", seq=seq, tick_ns=time_ns, records=(sample,), event=event, stale=stale
    )


class Env:
    def __init__(self, tmp_path: Path) -> None:
        self.url = f"sqlite:///{tmp_path / 's.db'}"
        self.clock = FakeClock(start_ns=START_NS)
        self.store: Store = open_store(self.url, clock=self.clock)
        self.sink = StoreSink(
            self.store, clock=self.clock, compact_after_s=3600, compact_every_s=600
        )


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    e = Env(tmp_path)
    yield e
    e.store.close()


def _count(url: str, table: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())
    finally:
        engine.dispose()


def test_writes_each_collection_and_compacts_on_schedule(env: Env) -> None:
    for i in range(10):
        env.sink(_result(i + 1, START_NS + i * NS_PER_S))
    assert env.sink.written_collections == 10
    assert env.sink.compactions == 0
    assert _count(env.url, "host_chunks") == 0
    # Two hours later the first samples are old enough, and the next write compacts.
    env.clock.advance(2 * 3600 * NS_PER_S)
    env.sink(_result(11, env.clock.time_ns()))
    assert env.sink.compactions == 1
    assert _count(env.url, "host_chunks") > 0
    assert _count(env.url, "host_cpu") == 3  # only the newest sample's rows stay wide
    assert _count(env.url, "collection_log") == 11


def test_stale_result_logs_the_failure_without_repeating_samples(env: Env) -> None:
    env.sink(_result(1, START_NS))
    env.sink(_result(2, START_NS + NS_PER_S, stale=True))
    assert _count(env.url, "collection_log") == 2
    assert _count(env.url, "host_mem") == 1


def test_a_failed_write_is_counted_and_earlier_data_stays(env: Env) -> None:
    env.sink(_result(1, START_NS))
    with env.store.engine.begin() as conn:
        # Fill the database: no page may be added any more.
        pages = conn.execute(sa.text("PRAGMA page_count")).scalar_one()
        conn.execute(sa.text(f"PRAGMA max_page_count = {pages}"))
    for i in range(2, 40):
        env.sink(_result(i, START_NS + i * NS_PER_S))
    assert env.sink.failed_writes > 0
    assert env.sink.last_error is not None
    assert "full" in env.sink.last_error
    assert _count(env.url, "host_mem") >= 1
    waiting = env.sink.pending
    assert waiting > 0
    # Room again: the waiting collections are written, oldest first, before the next.
    with env.store.engine.begin() as conn:
        conn.execute(sa.text("PRAGMA max_page_count = 1073741823"))
    env.sink(_result(40, START_NS + 40 * NS_PER_S))
    assert env.sink.pending == 0
    assert env.sink.lost_collections == 0
    assert _count(env.url, "host_mem") == 40
    assert _count(env.url, "collection_log") == 40


def test_the_retry_buffer_is_bounded_and_counts_what_it_drops(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    sink = StoreSink(
        env.store, clock=env.clock, compact_after_s=3600, compact_every_s=600, retry_buffer=3
    )

    def away(records: object) -> int:
        raise StoreError("database is away")

    monkeypatch.setattr(env.store, "write", away)
    for i in range(10):
        sink(_result(i + 1, START_NS + i * NS_PER_S))
    assert (sink.pending, sink.lost_collections, sink.failed_writes) == (3, 7, 10)
