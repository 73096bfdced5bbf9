"""Counters kept in the store: a restarted source continues them, in real
SQLite and PostgreSQL databases.

A "restart" here is what ``collectbus serve`` does at start: a new source
over the same store, under the same instance name, with nothing in memory.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from collectbus.aggregate import AggregateSpec, Aggregator, read_aggregates
from collectbus.clock import NS_PER_S, FakeClock, SystemClock
from collectbus.errors import StoreError
from collectbus.records import CallRecord, CollectionEvent
from collectbus.serve.counting.aggtrack import AggregateCounters, AggregateTracker
from collectbus.serve.counting.saved import SavedSeries, decode_key, encode_key
from collectbus.serve.counting.tally import Totals
from collectbus.serve.metrics.callstats import CallStatsSource, CollectionsSource
from collectbus.store import Store
from collectbus.store import open as open_store
from collectbus.store.calls import call_rows, insert_calls
from collectbus.store.schema import serve_counters
from tests.unit.serve.serve_helpers import T0, call_records, expected_totals, plain, settled


@pytest.fixture
def store(migrated_store_url: str) -> Iterator[Store]:
    with open_store(migrated_store_url) as s:
        yield s


def _saved(store: Store, source: str, instance: str = "node1:9469") -> SavedSeries:
    return SavedSeries(store, instance, source, clock=SystemClock())


def _calls_source(store: Store, instance: str = "node1:9469") -> CallStatsSource:
    return CallStatsSource(store, clock=SystemClock(), saved=_saved(store, "calls", instance))


def _total(totals: dict[tuple[str, ...], Totals]) -> int:
    return sum(t.count for t in totals.values())


def test_series_keys_are_canonical_json_and_read_back() -> None:
    key = ("by_handler", (("handler", "a"), ("host", "é")))
    assert encode_key(key) == '["by_handler",[["handler","a"],["host","é"]]]'
    assert decode_key(encode_key(key)) == key
    assert decode_key(encode_key(())) == ()
    with pytest.raises(ValueError, match="not a JSON array"):
        decode_key('{"a": 1}')


def test_a_restart_continues_from_the_saved_counters_whatever_was_deleted(
    store: Store,
) -> None:
    first = call_records(0, 300)
    store.write(first)
    before = plain(settled(_calls_source(store).tally))
    assert before == plain(expected_totals(first))

    # Down: retention deletes the oldest half, a purge every call of one handler.
    with store.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM calls WHERE id <= (SELECT min(id) + 149 FROM calls)"))
        conn.execute(sa.text("DELETE FROM calls WHERE handler = 'render'"))

    restarted = _calls_source(store)
    # Its first update: exactly what was exported before, nothing lower.
    assert plain(restarted.tally.update()) == before
    more = call_records(300, 120)
    store.write(more)
    # Then what was added since, and nothing for what was deleted.
    assert plain(settled(restarted.tally)) == plain(expected_totals(first + more))


@pytest.mark.postgres
def test_postgresql_newest_rows_deleted_while_down_are_not_counted_again(
    postgres_url: str,
) -> None:
    """PostgreSQL never reuses an id: a highest id below the saved one means
    deleted rows, not a reset, so nothing present is counted twice."""
    with open_store(postgres_url) as store:
        first = call_records(0, 80)
        store.write(first)
        before = plain(settled(_calls_source(store).tally))
        with store.engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM calls WHERE id > (SELECT max(id) - 30 FROM calls)"))
        restarted = _calls_source(store)
        assert plain(restarted.tally.update()) == before
        more = call_records(80, 10)
        store.write(more)
        assert plain(settled(restarted.tally)) == plain(expected_totals(first + more))


def test_without_saved_state_a_restart_starts_from_the_rows_present(store: Store) -> None:
    """What the saved state fixes: the same restart, counters kept in memory only."""
    store.write(call_records(0, 100))
    assert _total(settled(CallStatsSource(store, clock=SystemClock()).tally)) == 100
    with store.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM calls WHERE id <= (SELECT min(id) + 59 FROM calls)"))
    assert _total(settled(CallStatsSource(store, clock=SystemClock()).tally)) == 40


def test_a_group_that_shrank_while_down_keeps_its_count(store: Store) -> None:
    """Collections logged as running... then moved to another status while the server was down."""
    events = [
        CollectionEvent(
            source="pbs",
            host="h",
            started_ns=T0 + i * NS_PER_S,
            duration_ns=(i + 1) * 1_000_000,
            status="partial" if i % 2 else "ok",
        )
        for i in range(40)
    ]
    store.write(events)
    saved = _saved(store, "collections")
    before = plain(settled(CollectionsSource(store, clock=SystemClock(), saved=saved).tally))
    assert before[("pbs", "partial")][0] == 20

    with store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE collection_log SET status = 'ok' WHERE status = 'partial'"))
    restarted = CollectionsSource(store, clock=SystemClock(), saved=_saved(store, "collections"))
    after = restarted.tally.update()
    assert plain(after) == before
    ended = [e.started_ns + e.duration_ns for e in events]
    assert after[("pbs", "ok")].last_end_ns == max(ended[::2])  # saved, as they were
    assert after[("pbs", "partial")].last_end_ns == max(ended[1::2])


def test_each_instance_has_its_own_counters(store: Store) -> None:
    store.write(call_records(0, 50))
    assert _total(settled(_calls_source(store, "a:1").tally)) == 50
    with store.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM calls WHERE id <= (SELECT min(id) + 39 FROM calls)"))
    store.write(call_records(50, 7))
    # Another name has no saved state: it counts the rows present.
    assert _total(settled(_calls_source(store, "b:1").tally)) == 17
    assert _total(settled(_calls_source(store, "a:1").tally)) == 57


def _written(store: Store) -> dict[str, int]:
    c = serve_counters.c
    with store.engine.connect() as conn:
        return {series: int(ns) for series, ns in conn.execute(sa.select(c.series, c.updated_ns))}


def test_only_the_series_that_changed_are_written(store: Store) -> None:
    clock = FakeClock()
    saved = SavedSeries(store, "node1:9469", "calls", clock=clock)
    source = CallStatsSource(store, clock=SystemClock(), saved=saved)
    store.write(call_records(0, 30))  # three handlers, ok and error
    settled(source.tally)
    first = _written(store)
    assert len(first) == 6 + 1  # six series and the source's state
    store.write(
        [
            CallRecord(
                handler="render",
                qualname="m.f",
                host="h",
                pid=1,
                thread_id=1,
                started_ns=T0,
                elapsed_ns=1000,
            )
        ]
    )
    clock.advance(NS_PER_S)
    settled(source.tally)
    second = _written(store)
    rewritten = {s for s in second if second[s] != first[s]}
    assert rewritten == {encode_key(("render", "ok")), encode_key(())}


def test_a_save_that_fails_is_logged_once_and_written_by_the_next(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    source = _calls_source(store)
    store.write(call_records(0, 20))
    settled(source.tally)
    with store.engine.begin() as conn:
        serve_counters.drop(conn)
    store.write(call_records(20, 10))
    with caplog.at_level(logging.WARNING, logger="collectbus.serve"):
        assert _total(settled(source.tally)) == 30  # still counted and exported
        store.write(call_records(30, 5))
        assert _total(settled(source.tally)) == 35
    failures = [r for r in caplog.records if "counters not saved" in r.getMessage()]
    assert len(failures) == 1
    assert "\n" not in failures[0].getMessage()
    with store.engine.begin() as conn:
        serve_counters.create(conn)
    source.tally.update()  # no new rows: writes what is pending
    assert _total(_calls_source(store).tally.update()) == 35


@pytest.mark.parametrize(
    "value",
    [
        "not json",
        '{"count": 1}',
        '{"count": 1, "sum_ns": 5, "buckets": [1, 2], "last_end_ns": null}',
    ],
)
def test_saved_state_that_cannot_be_read_back_is_reported_and_replaced(
    store: Store, caplog: pytest.LogCaptureFixture, value: str
) -> None:
    store.write(call_records(0, 12))
    settled(_calls_source(store).tally)
    with store.engine.begin() as conn:
        conn.execute(
            sa.update(serve_counters)
            .where(serve_counters.c.series == encode_key(("render", "ok")))
            .values(value=value)
        )
        conn.execute(  # a series of another layout, which the replacing save removes
            sa.insert(serve_counters).values(
                instance="node1:9469", source="calls", series='["x"]', value="{}", updated_ns=0
            )
        )
    with caplog.at_level(logging.WARNING, logger="collectbus.serve"):
        restarted = _calls_source(store)
        assert _total(settled(restarted.tally)) == 12  # from the rows present
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.startswith("serve_counters (node1:9469, calls): saved counters not used (")
    with store.engine.connect() as conn:
        series = set(conn.execute(sa.select(serve_counters.c.series)).scalars())
    assert '["x"]' not in series
    assert _total(_calls_source(store).tally.update()) == 12  # the replaced state reads back


def test_saved_state_that_cannot_be_read_fails_the_scrape_and_is_read_by_the_next(
    store: Store,
) -> None:
    store.write(call_records(0, 25))
    settled(_calls_source(store).tally)
    with store.engine.begin() as conn:
        rows = [dict(r._mapping) for r in conn.execute(sa.select(serve_counters))]
        serve_counters.drop(conn)
    store.write(call_records(25, 5))
    restarted = _calls_source(store)
    with pytest.raises(StoreError, match="read the saved calls counters"):
        restarted.tally.update()
    assert restarted.tally.totals() == {}  # left as it was: nothing counted from zero
    with store.engine.begin() as conn:
        serve_counters.create(conn)
        conn.execute(sa.insert(serve_counters), rows)
    assert _total(settled(restarted.tally)) == 30


# ---------------------------------------------------------------- aggregates

SPEC = AggregateSpec(
    name="by_handler",
    table="calls",
    keys=("handler",),
    measures=("elapsed_ns",),
    error_column="error_type",
)
HANDLERS = ("a", "b", "c")


def _insert(store: Store, rng: random.Random, n: int) -> None:
    store.write(
        [
            CallRecord(
                handler=rng.choice(HANDLERS),
                qualname="m.f",
                host="h",
                pid=1,
                thread_id=1,
                started_ns=rng.randrange(10**18),
                elapsed_ns=rng.randrange(1, 10**7),
                error_type=rng.choice((None, None, "E")),
            )
            for _ in range(n)
        ]
    )


def _flat(c: dict[str, AggregateCounters]) -> dict[tuple[object, ...], float]:
    out: dict[tuple[object, ...], float] = {}
    for name, agg in c.items():
        out[(name, "mismatches")] = agg.mismatches
        for key, g in agg.groups.items():
            for field in ("rows", "rows_retracted", "errors", "errors_retracted"):
                out[(name, key, field)] = getattr(g, field)
            for m, o in g.measures.items():
                out[(name, key, m, "count")] = o.count
                out[(name, key, m, "sum")] = o.sum
                for le, n in o.per_bucket.items():
                    out[(name, key, m, le)] = n
    return out


def _tracker(store: Store) -> AggregateTracker:
    return AggregateTracker(_saved(store, "aggregates"))


def test_a_restarted_tracker_counts_what_one_that_never_stopped_counts(store: Store) -> None:
    """Inserts, edits that move rows to another group, deletes; the server
    restarted at random points: its counters equal those of a tracker that
    saw every state, and never go down."""
    rng = random.Random(11)
    _insert(store, rng, 60)
    continuous = AggregateTracker()
    with Aggregator(store, SPEC) as agg:
        agg.update()
        views = read_aggregates(store)
        continuous.observe(views)
        restarted = _tracker(store)
        last = _flat(restarted.observe(views))
        for step in range(30):
            action = rng.choice(("insert", "move", "delete"))
            with store.engine.begin() as conn:
                if action == "insert":
                    pass
                elif action == "move":  # a group shrinks, another grows
                    conn.execute(
                        sa.text(
                            "UPDATE calls SET handler = :to WHERE id IN (SELECT id FROM calls"
                            " WHERE handler = :from ORDER BY id LIMIT 3)"
                        ),
                        {"from": rng.choice(HANDLERS), "to": rng.choice(HANDLERS)},
                    )
                else:
                    conn.execute(
                        sa.text(
                            "DELETE FROM calls WHERE id IN (SELECT id FROM calls ORDER BY id"
                            " LIMIT 4)"
                        )
                    )
            if action == "insert":
                _insert(store, rng, 5)
            agg.update()
            views = read_aggregates(store)
            continuous.observe(views)
            if rng.random() < 0.4:  # down while that changed: a new tracker
                restarted = _tracker(store)
            now = _flat(restarted.observe(views))
            assert now == _flat(continuous.observe(views)), step
            assert all(now.get(k, 0) >= v for k, v in last.items()), step
            last = now


def test_a_group_that_shrank_while_down_counts_as_retracted(store: Store) -> None:
    rng = random.Random(3)
    _insert(store, rng, 40)
    with Aggregator(store, SPEC) as agg:
        agg.update()
        before = _tracker(store).observe(read_aggregates(store))["by_handler"].groups
        a = (("handler", "a"),)
        (view,) = read_aggregates(store)
        held = next(g.count for g in view.groups if g.keys == {"handler": "a"})
        with store.engine.begin() as conn:
            conn.execute(sa.text("UPDATE calls SET handler = 'b' WHERE handler = 'a'"))
        agg.update()
        after = _tracker(store).observe(read_aggregates(store))["by_handler"].groups
    assert after[a].rows == before[a].rows  # not lower
    assert after[a].rows_retracted == before[a].rows_retracted + held
    b = (("handler", "b"),)
    assert after[b].rows == before[b].rows + held
    assert after[a].measures["elapsed_ns"].count == before[a].measures["elapsed_ns"].count


def test_an_aggregate_reset_and_rebuilt_while_down_is_not_counted_twice(store: Store) -> None:
    rng = random.Random(5)
    _insert(store, rng, 30)
    with Aggregator(store, SPEC) as agg:
        agg.update()
        before = _flat(_tracker(store).observe(read_aggregates(store)))
        agg.reset()
        # Read while it is gone: its counters stay as saved.
        assert _flat(_tracker(store).observe(read_aggregates(store))) == before
        agg.reset(backfill=True)
        after = _flat(_tracker(store).observe(read_aggregates(store)))
    assert after == before


@pytest.mark.postgres
def test_a_restart_still_looks_for_the_ids_it_skipped(postgres_url: str) -> None:
    """An id skipped because its writer had not committed is saved as pending:
    the restarted source counts its row when it appears, once."""
    with open_store(postgres_url) as store:
        late = store.engine.connect()
        try:
            tx = late.begin()
            insert_calls(late, call_rows(call_records(0, 1)), copy=False)  # id 1, open
            with store.engine.begin() as conn:
                insert_calls(conn, call_rows(call_records(1, 1)), copy=False)  # id 2
            first = _calls_source(store)
            assert _total(first.tally.update()) == 1
            assert first.tally.pending
            tx.commit()
        finally:
            late.close()
        restarted = _calls_source(store)
        assert _total(restarted.tally.update()) == 2
        assert not restarted.tally.pending
        assert _total(restarted.tally.update()) == 2
