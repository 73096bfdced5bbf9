"""Groups stored as a base row plus a row per update: each update appends a
small row per group it touched and folds a few groups; the newest row holds
the totals and the sum of the rows is the sketch; migration 0007 turns the
former one-row-per-group table into base rows and back. SQLite and PostgreSQL."""

from __future__ import annotations

import json
import random
from typing import Any

from alembic import command
from sqlalchemy import text

from collectbus.aggregate import AggregateSpec, Aggregator, read_aggregates
from collectbus.aggregate import parts as parts_module
from collectbus.aggregate.parts import load_groups
from collectbus.aggregate.sketch import LogSketch
from collectbus.store import Store
from collectbus.store import open as open_store
from collectbus.store.migrate import alembic_config
from collectbus.store.store import make_engine
from tests.integration.aggregate.oracle import oracle, stored
from tests.integration.aggregate.test_aggregate_property import insert_call

HANDLERS = ("a", "b", "c", "d", "e")
SPEC = AggregateSpec(
    name="by_handler",
    table="calls",
    keys=("handler",),
    measures=("elapsed_ns",),
    error_column="error_type",
)


def _insert(store: Store, rng: random.Random, count: int) -> None:
    with store.engine.begin() as conn:
        for i in range(count):
            insert_call(conn, HANDLERS[i % len(HANDLERS)], int(rng.lognormvariate(10, 2)), None)


def _rows(store: Store) -> dict[str, dict[int, str]]:
    """group key -> part -> sketches text."""
    out: dict[str, dict[int, str]] = {}
    with store.engine.connect() as conn:
        for key, part, body in conn.execute(
            text("SELECT group_key, part, sketches FROM aggregate_parts WHERE name = :n"),
            {"n": SPEC.name},
        ):
            out.setdefault(key, {})[int(part)] = body
    return out


def test_each_update_appends_deltas_and_folds_a_few_groups(store: Store) -> None:
    rng = random.Random(7)
    _insert(store, rng, 200)
    with Aggregator(store, SPEC) as agg:
        agg.update()
        before = _rows(store)
        assert {parts.keys() == {0} for parts in before.values()} == {True}
        folds_seen = 0
        for _ in range(3 * parts_module.FOLD_AT):
            _insert(store, rng, 40)
            agg.update()
            after = _rows(store)
            rebased = [k for k in after if after[k][0] != before[k][0]]
            # One fold per FOLD_SHARE groups touched (all of them, here).
            assert len(rebased) <= -(-len(HANDLERS) // parts_module.FOLD_SHARE)
            folds_seen += len(rebased)
            for key, parts in after.items():
                # A folded group starts again from its base alone.
                assert len(parts) - 1 <= parts_module.MAX_PARTS
                if key in rebased:
                    assert set(parts) == {0}
            before = after
        assert folds_seen > 0
        assert max(len(p) for p in before.values()) > 1  # deltas are in use
        assert stored(store.engine, SPEC) == oracle(store.engine, SPEC)
        assert agg.refresh().mismatched_groups == 0
    # Readers add the rows up: quantiles from the stored view equal those of
    # the oracle's sketch.
    truth = oracle(store.engine, SPEC)
    (view,) = read_aggregates(store, [SPEC.name])
    for group in view.groups:
        expected = LogSketch(truth[(group.keys["handler"],)]["elapsed_ns"]["sketch"])
        assert group.measures["elapsed_ns"].quantiles[0.99] == expected.quantile(0.99)


def test_migration_0007_moves_sketches_to_base_rows_and_back(store_url: str) -> None:
    rng = random.Random(3)
    store = open_store(store_url)
    try:
        _insert(store, rng, 300)
        with Aggregator(store, SPEC) as agg:
            agg.update()
            for _ in range(5):  # leave deltas behind
                _insert(store, rng, 30)
                agg.update()
        with store.engine.connect() as conn:
            built = load_groups(conn, SPEC.name, SPEC.measures)
        assert any(g.parts for g in built.values())
    finally:
        store.close()

    engine = make_engine(store_url)
    try:
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "0006")
            rows = conn.execute(
                text("SELECT group_key, measures FROM aggregates WHERE name = :n"),
                {"n": SPEC.name},
            ).all()
        assert {key for key, _ in rows} == set(built)
        for key, measures in rows:
            sketch = LogSketch.from_json(json.loads(measures)["elapsed_ns"]["sketch"])
            assert sketch == built[key].measures[0].sketch
    finally:
        engine.dispose()

    store = open_store(store_url)  # upgrades to the head again
    try:
        with store.engine.connect() as conn:
            again = load_groups(conn, SPEC.name, SPEC.measures)
        assert {k: g.measures[0].sketch for k, g in again.items()} == {
            k: g.measures[0].sketch for k, g in built.items()
        }
        assert {p.keys() == {0} for p in _rows(store).values()} == {True}
        _insert(store, rng, 50)
        with Aggregator(store, SPEC) as agg:
            agg.update()
        assert stored(store.engine, SPEC) == oracle(store.engine, SPEC)
    finally:
        store.close()


def test_groups_without_measures_are_folded_too(store: Store) -> None:
    """Every touched group gets a row, sketch or not: an aggregate of counts
    alone must not pile rows up either."""
    spec = AggregateSpec(name="counts", table="calls", keys=("handler",), error_column="error_type")
    rng = random.Random(11)
    with Aggregator(store, spec) as agg:
        agg.update()
        for _ in range(parts_module.FOLD_AT + 2 * parts_module.FOLD_SHARE):
            _insert(store, rng, 10)
            agg.update()
    with store.engine.connect() as conn:
        most = conn.execute(
            text(
                "SELECT max(n) FROM (SELECT count(*) AS n FROM aggregate_parts"
                " WHERE name = 'counts' GROUP BY group_key) AS per_group"
            )
        ).scalar_one()
    assert most <= parts_module.FOLD_AT + parts_module.FOLD_SHARE + 1
    assert stored(store.engine, spec) == oracle(store.engine, spec)


def test_an_earlier_versions_index_gives_way_to_this_ones(sqlite_url: str) -> None:
    """An aggregate built by an earlier version has its index in value order
    (keys, bucket): the first update of this version swaps it for the index in
    id order, and the totals stay exact."""
    store = open_store(sqlite_url)
    try:
        rng = random.Random(5)
        _insert(store, rng, 200)
        with Aggregator(store, SPEC) as agg:
            agg.update()
            legacy, current = agg.sql.legacy_index_name, agg.sql.index_name
        with store.engine.begin() as conn:
            conn.exec_driver_sql(f'DROP INDEX "{current}"')
            conn.exec_driver_sql(f'CREATE INDEX "{legacy}" ON calls (handler, elapsed_ns)')
        _insert(store, rng, 50)
        with Aggregator(store, SPEC) as agg:
            agg.update()
        with store.engine.connect() as conn:
            names = {
                r[0]
                for r in conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'index'")
            }
        assert current in names
        assert legacy not in names
        assert stored(store.engine, SPEC) == oracle(store.engine, SPEC)
    finally:
        store.close()


def test_migration_0008_clusters_the_parts_by_key_in_sqlite(sqlite_url: str) -> None:
    """SQLite keeps a group's rows together (WITHOUT ROWID); the rows survive
    the rebuild both ways."""

    def table_sql(conn: Any) -> str:
        return str(
            conn.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE name = 'aggregate_parts'"
            ).scalar_one()
        )

    store = open_store(sqlite_url)
    try:
        _insert(store, random.Random(8), 200)
        with Aggregator(store, SPEC) as agg:
            agg.update()
            _insert(store, random.Random(9), 40)
            agg.update()
        before = _rows(store)
        with store.engine.connect() as conn:
            assert "WITHOUT ROWID" in table_sql(conn)
    finally:
        store.close()
    engine = make_engine(sqlite_url)
    try:
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "0007")
            assert "WITHOUT ROWID" not in table_sql(conn)
    finally:
        engine.dispose()
    store = open_store(sqlite_url)  # upgrades to the head again
    try:
        assert _rows(store) == before
        with store.engine.connect() as conn:
            assert "WITHOUT ROWID" in table_sql(conn)
    finally:
        store.close()
