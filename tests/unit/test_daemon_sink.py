"""The store writer of the daemon: one collection per write, compaction, failures,
outages (at start or later) logged once and retried with a backoff."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from collectbus.bus import Result
from collectbus.clock import NS_PER_S, FakeClock
from collectbus.errors import SchemaError, StoreError
from collectbus.pipeline.sink import STORE_RETRY_MAX_S, StoreSink
from collectbus.records import CollectionEvent, HostSample, NetRow, ProcessRow, ProcessSample
from collectbus.store import Store
from collectbus.store import open as open_store
from collectbus.store.store import make_engine
from collectbus.testing.hosts import make_host_sample

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
    def __init__(self, tmp_path: Path, migrated: Path) -> None:
        """The store is the migrated file ``migrated``, moved into a directory of its own."""
        self.dir = tmp_path / "db"
        self.dir.mkdir()
        migrated.rename(self.dir / "s.db")
        self.url = f"sqlite:///{self.dir / 's.db'}"
        self.clock = FakeClock(start_ns=START_NS)
        self.store: Store = open_store(self.url, clock=self.clock)
        self.sink = StoreSink(
            self.store, clock=self.clock, compact_after_s=3600, compact_every_s=600
        )


@pytest.fixture
def env(tmp_path: Path, migrated_sqlite_url: str) -> Iterator[Env]:
    e = Env(tmp_path, Path(migrated_sqlite_url.removeprefix("sqlite:///")))
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


def test_top_processes_stay_on_the_bus_and_their_collection_is_logged(env: Env) -> None:
    row = ProcessRow(1, "init", "/sbin/init", "root", 0.5, 4096, None, None, 1, 1, 1)
    sample = ProcessSample(host="h1", time_ns=START_NS, processes=(row,), seen=1)
    event = CollectionEvent(
        source="processes", host="h1", started_ns=START_NS, duration_ns=1, status="ok", records=1
    )
    env.sink(Result(collector="processes", seq=1, tick_ns=START_NS, records=(sample,), event=event))
    assert env.sink.written_collections == 1
    assert env.sink.refused_collections == 0
    assert _count(env.url, "collection_log") == 1


def test_a_failed_write_is_counted_and_earlier_data_stays(env: Env) -> None:
    env.sink(_result(1, START_NS))
    with env.store.engine.begin() as conn:
        # Fill the database: no page may be added any more.
        pages = conn.execute(sa.text("PRAGMA page_count")).scalar_one()
        conn.execute(sa.text(f"PRAGMA max_page_count = {pages}"))
    for i in range(2, 40):
        env.clock.advance(NS_PER_S)
        env.sink(_result(i, env.clock.time_ns()))
    assert env.sink.failed_writes > 0
    assert env.sink.last_error is not None
    assert "full" in env.sink.last_error
    assert _count(env.url, "host_mem") >= 1
    waiting = env.sink.pending
    assert waiting > 0
    # Room again: past the backoff, the waiting collections are written, oldest
    # first, before the next.
    with env.store.engine.begin() as conn:
        conn.execute(sa.text("PRAGMA max_page_count = 1073741823"))
    env.clock.advance(int(STORE_RETRY_MAX_S * NS_PER_S))
    env.sink(_result(40, env.clock.time_ns()))
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
    # The clock stands still: the store is tried once, then the sink backs off.
    assert (sink.pending, sink.lost_collections, sink.failed_writes) == (3, 7, 1)


def _away(env: Env) -> None:
    """The database's directory goes away (an unmounted volume): SQLite cannot open it."""
    env.dir.rename(env.dir.with_name("db-away"))
    env.store.engine.dispose()


def _back(env: Env) -> None:
    env.dir.with_name("db-away").rename(env.dir)


def test_an_outage_is_logged_once_retried_with_backoff_and_its_end_logged(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    env.sink(_result(1, START_NS))
    _away(env)
    tried = []
    with caplog.at_level(logging.INFO, logger="collectbus.daemon"):
        for i in range(2, 22):  # one collection a second, 20 s of outage
            env.clock.advance(NS_PER_S)
            before = env.sink.failed_writes
            env.sink(_result(i, env.clock.time_ns()))
            if env.sink.failed_writes > before:
                tried.append(i - 2)
        _back(env)
        env.clock.advance(int(STORE_RETRY_MAX_S * NS_PER_S))
        env.sink(_result(22, env.clock.time_ns()))
    # Tried at once, then 1, 2, 4 and 8 s after each failure; the outage began at
    # the first failure, 1 s into the loop, and ends 19 + 30 s later.
    assert tried == [0, 1, 3, 7, 15]
    errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(errors) == 1, caplog.text
    assert errors[0].levelname == "ERROR"
    assert errors[0].getMessage().startswith(f"store: {env.store.url}: ")
    assert "cannot open the database file" in errors[0].getMessage()
    assert "\n" not in errors[0].getMessage()
    back = [r.getMessage() for r in caplog.records if " is back after " in r.getMessage()]
    assert back == [
        f"store: {env.store.url} is back after {19 + STORE_RETRY_MAX_S:.0f} s: "
        "21 collections written, 0 dropped, 5 failed tries"
    ]
    assert (env.sink.pending, env.sink.written_collections) == (0, 22)
    assert _count(env.url, "collection_log") == 22


def test_a_second_outage_is_logged_again(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="collectbus.daemon"):
        for outage in range(2):
            _away(env)
            env.clock.advance(int(STORE_RETRY_MAX_S * NS_PER_S))
            env.sink(_result(2 * outage + 1, env.clock.time_ns()))
            _back(env)
            env.clock.advance(int(STORE_RETRY_MAX_S * NS_PER_S))
            env.sink(_result(2 * outage + 2, env.clock.time_ns()))
    levels = [r.levelname for r in caplog.records if r.getMessage().startswith("store: ")]
    assert levels == ["ERROR", "INFO", "ERROR", "INFO"]
    assert _count(env.url, "collection_log") == 4


def test_a_store_unreachable_at_start_is_migrated_and_written_once_reachable(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # SQLite cannot open a file in a directory that does not exist yet.
    url = f"sqlite:///{tmp_path / 'later' / 's.db'}"
    clock = FakeClock(start_ns=START_NS)
    store = Store(make_engine(url), clock=clock)
    sink = StoreSink(store, clock=clock, compact_after_s=3600, compact_every_s=600, migrate=True)
    try:
        with caplog.at_level(logging.INFO, logger="collectbus.daemon"):
            sink.flush()
            for i in range(1, 6):
                clock.advance(NS_PER_S)
                sink(_result(i, clock.time_ns()))
            assert sink.pending == 5
            (tmp_path / "later").mkdir()
            clock.advance(int(STORE_RETRY_MAX_S * NS_PER_S))
            sink(_result(6, clock.time_ns()))
        assert (sink.pending, sink.written_collections, sink.fatal) == (0, 6, None)
        assert _count(url, "collection_log") == 6
        assert _count(url, "host_mem") == 6
        messages = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(messages) == 1
        assert messages[0].startswith(f"store: {url}: ")
        assert "cannot open the database file" in messages[0]
        assert " is back after " in caplog.text
    finally:
        store.close()


def test_a_schema_newer_than_collectbus_is_fatal_and_nothing_is_written(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    open_store(url).close()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999_future'"))
    engine.dispose()
    clock = FakeClock(start_ns=START_NS)
    store = Store(make_engine(url), clock=clock)
    fatal: list[SchemaError] = []
    sink = StoreSink(
        store,
        clock=clock,
        compact_after_s=3600,
        compact_every_s=600,
        migrate=True,
        on_fatal=fatal.append,
    )
    try:
        for i in range(1, 4):
            clock.advance(int(STORE_RETRY_MAX_S * NS_PER_S))
            sink(_result(i, clock.time_ns()))
    finally:
        store.close()
    assert len(fatal) == 1
    assert sink.fatal is fatal[0]
    assert "schema at revision 9999_future, newer than this collectbus" in str(fatal[0])
    assert (sink.written_collections, sink.pending, sink.failed_writes) == (0, 3, 0)
    assert _count(url, "collection_log") == 0


def _poisoned(seq: int, time_ns: int) -> Result:
    """A collection whose eth0 counter is 2^64 - 1, as some NIC drivers print."""
    good = _result(seq, time_ns)
    sample = good.records[0]
    assert isinstance(sample, HostSample)
    eth0 = NetRow("eth0", 2**64 - 1, *([0] * 15))
    return dataclasses.replace(good, records=(dataclasses.replace(sample, net=(eth0,)),))


def test_a_refused_value_is_quarantined_and_the_collections_after_it_written_at_once(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="collectbus"):
        env.sink(_poisoned(1, START_NS))
        for i in range(2, 6):  # the clock stands still: no backoff could let them through
            env.sink(_result(i, START_NS + i))
    assert (env.sink.pending, env.sink.failed_writes, env.sink.lost_collections) == (0, 0, 0)
    assert env.sink.written_collections == 5
    assert _count(env.url, "collection_log") == 5
    assert _count(env.url, "host_mem") == 5  # the poisoned collection's other parts too
    assert _count(env.url, "quarantine") == 1
    assert env.store.quarantined == 1
    problems = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(problems) == 1
    assert "quarantine" in problems[0].getMessage()


def test_a_collection_refused_as_a_whole_is_dropped_and_never_holds_back_the_next(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    # A rule of the database on host names that nothing before the INSERT knows.
    with env.store.engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TRIGGER no_h9 BEFORE INSERT ON hosts WHEN NEW.name = 'h9' "
            "BEGIN SELECT RAISE(ABORT, 'no h9 here'); END"
        )

    def from_h9(seq: int, time_ns: int) -> Result:
        good = _result(seq, time_ns)
        sample = dataclasses.replace(good.records[0], host="h9")
        return dataclasses.replace(good, records=(sample,))

    with caplog.at_level(logging.INFO, logger="collectbus.daemon"):
        env.sink(from_h9(1, START_NS))
        env.sink(_result(2, START_NS + 1))
        env.sink(from_h9(3, START_NS + 2))
        env.sink(_result(4, START_NS + 3))
    assert (env.sink.pending, env.sink.failed_writes) == (0, 0)
    assert (env.sink.written_collections, env.sink.refused_collections) == (2, 2)
    assert _count(env.url, "collection_log") == 2
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(errors) == 1, errors  # one cause, logged once
    assert "no h9 here" in errors[0]
    assert "dropped, not retried" in errors[0]
