"""Each stored row is counted once, in real SQLite and PostgreSQL databases."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest
import sqlalchemy as sa

from collectbus.clock import NS_PER_S, FakeClock, SystemClock
from collectbus.records import CollectionEvent
from collectbus.serve.metrics.callstats import CallStatsSource, CollectionsSource
from collectbus.store import Store
from collectbus.store import open as open_store
from collectbus.store.calls import COLUMNS, call_rows, insert_calls
from collectbus.store.schema import calls
from tests.unit.serve.serve_helpers import T0, call_records, expected_totals, plain, settled


@pytest.fixture
def store(migrated_store_url: str) -> Iterator[Store]:
    with open_store(migrated_store_url) as s:
        yield s


def test_each_row_is_counted_once_however_often_it_is_read(store: Store) -> None:
    source = CallStatsSource(store, clock=SystemClock())
    first = call_records(0, 500)
    store.write(first)
    assert plain(settled(source.tally)) == plain(expected_totals(first))
    assert plain(source.tally.update()) == plain(expected_totals(first))  # no new rows: no change
    more = call_records(500, 300)
    store.write(more)
    assert plain(settled(source.tally)) == plain(expected_totals(first + more))


def test_deleted_rows_take_nothing_back(store: Store) -> None:
    source = CallStatsSource(store, clock=SystemClock())
    rows = call_records(0, 200)
    store.write(rows)
    before = plain(settled(source.tally))
    with store.engine.begin() as conn:  # retention: the oldest half goes
        conn.execute(sa.text("DELETE FROM calls WHERE id <= (SELECT max(id) FROM calls) - 100"))
    assert plain(source.tally.update()) == before
    more = call_records(200, 50)
    store.write(more)
    assert plain(settled(source.tally)) == plain(expected_totals(rows + more))


def test_collections_count_once_and_keep_the_latest_end(store: Store) -> None:
    source = CollectionsSource(store, clock=SystemClock())
    events = [
        CollectionEvent(
            source="host" if i % 4 else "pbs",
            host="h",
            started_ns=T0 + i * NS_PER_S,
            duration_ns=(i + 1) * 1_000_000,
            status="ok" if i % 3 else "error",
        )
        for i in range(40)
    ]
    store.write(events)
    totals = settled(source.tally)
    for (src, status), item in totals.items():
        mine = [e for e in events if (e.source, e.status) == (src, status)]
        assert item.count == len(mine)
        assert item.sum_ns == sum(e.duration_ns for e in mine)
        assert item.last_end_ns == max(e.started_ns + e.duration_ns for e in mine)
    assert sum(t.count for t in totals.values()) == 40
    assert source.tally.update().keys() == totals.keys()


def test_sqlite_ids_reused_after_every_row_was_deleted_are_new_rows(sqlite_url: str) -> None:
    with open_store(sqlite_url) as store:
        source = CallStatsSource(store, clock=SystemClock())
        store.write(call_records(0, 5))
        assert sum(t.count for t in source.tally.update().values()) == 5
        with store.engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM calls"))
        assert sum(t.count for t in source.tally.update().values()) == 5
        store.write(call_records(5, 3))  # SQLite gives ids 1..3 again
        assert sum(t.count for t in source.tally.update().values()) == 8


def test_the_newest_rows_deleted_are_not_counted_again(store: Store) -> None:
    """A purge that takes the newest rows lowers the highest id; the rows
    present were counted, and are not counted a second time (on SQLite the
    ids deleted are given again, to new rows that are counted)."""
    source = CallStatsSource(store, clock=SystemClock())
    store.write(call_records(0, 30))
    assert sum(t.count for t in settled(source.tally).values()) == 30
    with store.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM calls WHERE id > (SELECT max(id) - 10 FROM calls)"))
    assert sum(t.count for t in source.tally.update().values()) == 30
    store.write(call_records(30, 4))
    assert sum(t.count for t in settled(source.tally).values()) == 34


@pytest.mark.postgres
def test_a_reset_sequence_counts_the_rows_present_as_new(postgres_url: str) -> None:
    with open_store(postgres_url) as store:
        source = CallStatsSource(store, clock=SystemClock())
        store.write(call_records(0, 6))
        assert sum(t.count for t in settled(source.tally).values()) == 6
        with store.engine.begin() as conn:
            conn.execute(sa.text("TRUNCATE calls RESTART IDENTITY"))
        store.write(call_records(6, 2))  # ids 1 and 2 again
        assert sum(t.count for t in settled(source.tally).values()) == 8


def _insert(conn: sa.Connection, start: int) -> None:
    insert_calls(conn, call_rows(call_records(start, 1)), copy=False)


def _count(source: CallStatsSource) -> int:
    return sum(t.count for t in source.tally.update().values())


@pytest.mark.postgres
def test_a_row_committed_late_is_not_skipped(postgres_url: str) -> None:
    """PostgreSQL hands ids out before commit: id 1 commits after id 2 was read.
    Id 2 is counted at once, id 1 when it commits, neither twice."""
    with open_store(postgres_url) as store:
        source = CallStatsSource(store, clock=SystemClock())
        late = store.engine.connect()
        try:
            tx = late.begin()
            _insert(late, 0)  # takes id 1, not committed yet
            with store.engine.begin() as conn:
                _insert(conn, 1)  # takes id 2, committed
            assert _count(source) == 1
            assert source.tally.pending  # id 1, looked for again
            assert _count(source) == 1
            tx.commit()
        finally:
            late.close()
        assert _count(source) == 2
        assert not source.tally.pending
        assert _count(source) == 2


@pytest.mark.postgres
def test_a_writer_open_within_the_window_is_counted_when_it_commits(postgres_url: str) -> None:
    clock = FakeClock()
    with open_store(postgres_url) as store:
        source = CallStatsSource(store, clock=clock, pending_s=30)
        late = store.engine.connect()
        try:
            tx = late.begin()
            _insert(late, 0)
            with store.engine.begin() as conn:
                _insert(conn, 1)
            assert _count(source) == 1
            clock.advance(29 * NS_PER_S)
            assert _count(source) == 1
            tx.commit()
        finally:
            late.close()
        assert _count(source) == 2


@pytest.mark.postgres
def test_a_writer_open_past_the_window_is_given_up_on(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Past ``pending_s`` a skipped id is no longer looked for (a rolled-back
    id must not be looked for for ever): a writer that commits later still is
    not counted, and nothing is counted twice."""
    clock = FakeClock()
    with open_store(postgres_url) as store:
        source = CallStatsSource(store, clock=clock, pending_s=30)
        late = store.engine.connect()
        try:
            tx = late.begin()
            _insert(late, 0)
            with store.engine.begin() as conn:
                _insert(conn, 1)
            assert _count(source) == 1
            clock.advance(31 * NS_PER_S)
            with caplog.at_level(logging.INFO, logger="collectbus.serve"):
                assert _count(source) == 1
            assert "not seen for 31 s" in caplog.text
            assert not source.tally.pending
            tx.commit()
        finally:
            late.close()
        with store.engine.begin() as conn:
            _insert(conn, 2)
        assert _count(source) == 2  # the new row; the late one stays uncounted


def test_concurrent_writers_committing_out_of_order_are_counted_exactly(store: Store) -> None:
    """Writers hold their transactions open for a while after taking ids, so
    commits come out of id order; counting while they write must neither skip
    nor repeat a row."""
    source = CallStatsSource(store, clock=SystemClock())
    writers, transactions, rows_each = 4, 15, 3
    rng = np.random.default_rng(7)
    pauses = rng.uniform(0, 0.02, size=(writers, transactions))
    errors: list[BaseException] = []

    def write(w: int) -> None:
        try:
            for t in range(transactions):
                with store.engine.connect() as conn:
                    if store.dialect == "sqlite":
                        conn.execution_options(collectbus_begin="IMMEDIATE")
                    with conn.begin():
                        start = (w * transactions + t) * rows_each
                        insert_calls(conn, call_rows(call_records(start, rows_each)), copy=False)
                        time.sleep(pauses[w, t])
        except BaseException as err:
            errors.append(err)
            raise

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for thread in threads:
        thread.start()
    seen = [0]
    while any(thread.is_alive() for thread in threads):
        seen.append(sum(t.count for t in source.tally.update().values()))
        time.sleep(0.005)
    for thread in threads:
        thread.join()
    assert not errors
    assert seen == sorted(seen)  # never down
    final = sum(t.count for t in settled(source.tally).values())
    assert final == writers * transactions * rows_each


@pytest.mark.postgres
def test_an_id_taken_long_before_its_insert_is_waited_for(postgres_url: str) -> None:
    """A writer takes its id from the sequence before it has a transaction id
    (stretched here: the id is taken, a later id commits and is counted, and
    only then does the writer insert): the id stays pending until it commits."""
    with open_store(postgres_url) as store:
        source = CallStatsSource(store, clock=SystemClock())
        with store.engine.begin() as conn:  # the id, taken with no transaction id of the writer's
            early_id = conn.execute(
                sa.text("SELECT nextval(pg_get_serial_sequence('calls', 'id'))")
            ).scalar_one()
        with store.engine.begin() as conn:
            _insert(conn, 1)  # a later id, committed
        assert _count(source) == 1
        late = store.engine.connect()
        try:
            tx = late.begin()
            row = dict(zip(COLUMNS, call_rows(call_records(0, 1))[0], strict=True))
            late.execute(sa.insert(calls).values(id=early_id, **row))  # not committed
            assert [_count(source) for _ in range(5)] == [1] * 5
            tx.commit()
        finally:
            late.close()
        assert _count(source) == 2
        assert sum(t.count for t in settled(source.tally).values()) == 2
