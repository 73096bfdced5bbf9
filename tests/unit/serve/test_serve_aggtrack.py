"""The aggregates' counters only grow, over a real SQLite store and the real engine."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from prometheus_client import generate_latest
from tests.unit.serve.serve_helpers import counters, parse, value

from collectbus.aggregate import AggregateSpec, Aggregator, read_aggregates
from collectbus.records import CallRecord
from collectbus.serve.aggupdate import AggregateUpdater
from collectbus.serve.counting.aggtrack import AggregateCounters, AggregateTracker
from collectbus.serve.metrics.aggregates import AggregatesSource, label_name
from collectbus.serve.metrics.registry import metrics_registry
from collectbus.store import Store
from collectbus.store import open as open_store

HANDLERS = ("a", "b", "c")
SPEC = AggregateSpec(
    name="by_handler",
    table="calls",
    keys=("handler",),
    measures=("elapsed_ns",),
    error_column="error_type",
)


@pytest.fixture
def store(migrated_sqlite_url: str) -> Iterator[Store]:
    with open_store(migrated_sqlite_url) as s:
        yield s


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


def test_counters_only_grow_and_gains_minus_losses_is_the_change(store: Store) -> None:
    rng = random.Random(7)
    tracker = AggregateTracker()
    _insert(store, rng, 50)
    with Aggregator(store, SPEC) as agg:
        agg.update()
        before = _flat(tracker.observe(read_aggregates(store)))
        for step in range(40):
            action = rng.choice(("insert", "edit", "move", "delete", "errors"))
            with store.engine.begin() as conn:
                if action == "insert":
                    conn.commit()
                    _insert(store, rng, rng.randrange(1, 30))
                elif action == "edit":
                    conn.execute(
                        sa.text(
                            "UPDATE calls SET elapsed_ns = elapsed_ns * 2 + 1 WHERE id % 7 = :r"
                        ),
                        {"r": step % 7},
                    )
                elif action == "move":
                    conn.execute(
                        sa.text("UPDATE calls SET handler = :h WHERE id % 11 = :r"),
                        {"h": rng.choice(HANDLERS), "r": step % 11},
                    )
                elif action == "delete":
                    conn.execute(sa.text("DELETE FROM calls WHERE id % 13 = :r"), {"r": step % 13})
                else:
                    conn.execute(
                        sa.text("UPDATE calls SET error_type = NULL WHERE id % 5 = :r"),
                        {"r": step % 5},
                    )
            views_before = read_aggregates(store)
            agg.update()
            views = read_aggregates(store)
            after = _flat(tracker.observe(views))
            for key, old in before.items():
                assert after.get(key, 0) >= old, (action, key)
            state = tracker.observe(views)[SPEC.name]
            for group in views[0].groups:
                handler = str(group.keys["handler"])
                g = state.groups[(("handler", handler),)]
                # The first read counted what the aggregate held: from zero.
                assert g.rows - g.rows_retracted == group.count
            if action == "insert":
                # Only additions: each new row counted once, its value observed once.
                old_counts = {str(g.keys["handler"]): g.count for g in views_before[0].groups}
                for group in views[0].groups:
                    handler = str(group.keys["handler"])
                    added = group.count - old_counts.get(handler, 0)
                    key = (SPEC.name, (("handler", handler),))
                    assert after[(*key, "rows")] - before.get((*key, "rows"), 0) == added
                    assert (
                        after[(*key, "elapsed_ns", "count")]
                        - before.get((*key, "elapsed_ns", "count"), 0)
                        == added
                    )
            before = after


def test_a_rebuild_is_not_counted_again(store: Store) -> None:
    rng = random.Random(3)
    _insert(store, rng, 40)
    tracker = AggregateTracker()
    with Aggregator(store, SPEC) as agg:
        agg.update()
        before = _flat(tracker.observe(read_aggregates(store)))
        agg.reset(backfill=True)
        assert _flat(tracker.observe(read_aggregates(store))) == before
        # Reset, read while it is gone, then rebuilt: nothing counted twice.
        agg.reset()
        assert read_aggregates(store) == []
        assert _flat(tracker.observe([])) == before
        agg.update()
        assert _flat(tracker.observe(read_aggregates(store))) == before


def test_label_names_follow_prometheus_rules() -> None:
    assert label_name("handler") == "handler"
    assert label_name("agent-name.x") == "agent_name_x"
    assert label_name("9lives") == "key_9lives"
    assert label_name("__name__") == "key_name__"
    for reserved in ("le", "quantile", "aggregate", "measure"):
        assert label_name(reserved) == f"key_{reserved}"


def test_a_failing_update_is_counted_and_the_others_go_on(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    _insert(store, random.Random(1), 20)
    broken = AggregateSpec(name="broken", table="no_such_table", keys=("handler",))
    updater = AggregateUpdater(store, [broken, SPEC], interval_s=60)
    for _ in range(3):
        updater.run_once()
    updater.stop()
    status = updater.status()
    assert (status["broken"].runs, status["broken"].errors) == (3, 3)
    assert status["broken"].last_error is not None
    assert "no_such_table" in status["broken"].last_error
    assert (status[SPEC.name].runs, status[SPEC.name].errors) == (3, 0)
    logged = [r for r in caplog.records if "no_such_table" in r.getMessage()]
    assert len(logged) == 1
    source = AggregatesSource(store, specs=[SPEC, broken], updater=updater)
    samples = parse(generate_latest(metrics_registry([source])).decode())
    assert value(samples, "collectbus_aggregate_update_errors_total", aggregate="broken") == 3
    assert value(samples, "collectbus_aggregate_update_failing", aggregate="broken") == 1
    assert value(samples, "collectbus_aggregate_rows_total", aggregate=SPEC.name, handler="a") > 0
    assert value(samples, "collectbus_aggregate_lag_rows", aggregate=SPEC.name) == 0
    _insert(store, random.Random(2), 5)
    again = parse(generate_latest(metrics_registry([source])).decode())
    assert value(again, "collectbus_aggregate_lag_rows", aggregate=SPEC.name) == 5
    assert counters(again).keys() >= {k for k in counters(samples) if "update" not in k[0]}
