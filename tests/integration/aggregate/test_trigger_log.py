"""The triggers log each changed row's contribution before and after the
change, so that an update reads the log alone; changes logged by an earlier
version's triggers (the old contribution only) are still applied, by reading
the rows; an edit of a row's id moves its contribution. SQLite and PostgreSQL."""

from __future__ import annotations

import random

from alembic import command
from sqlalchemy import text

from collectbus.aggregate import Aggregator
from collectbus.aggregate.checkpoint import load_checkpoint
from collectbus.aggregate.sql import AggregateSql, literal
from collectbus.store import Store
from collectbus.store import open as open_store
from collectbus.store.migrate import alembic_config
from collectbus.store.store import make_engine
from tests.integration.aggregate.oracle import oracle, stored
from tests.integration.aggregate.test_aggregate_property import insert_call
from tests.integration.aggregate.test_sketch_parts import SPEC


def _fill(store: Store, rng: random.Random, count: int) -> None:
    with store.engine.begin() as conn:
        for i in range(count):
            insert_call(conn, "abc"[i % 3], rng.randrange(1, 10**6), None)


def _edit(store: Store, rng: random.Random, edits: int) -> None:
    with store.engine.begin() as conn:
        top = conn.execute(text("SELECT max(id) FROM calls")).scalar_one()
        for _ in range(edits):
            conn.execute(
                text("UPDATE calls SET elapsed_ns = :e, handler = :h WHERE id = :id"),
                {"e": rng.randrange(1, 10**6), "h": rng.choice("abcd"), "id": rng.randint(1, top)},
            )
        conn.execute(text("DELETE FROM calls WHERE id = :id"), {"id": rng.randint(1, top)})


def _logged(store: Store) -> list[tuple[str, str | None]]:
    with store.engine.connect() as conn:
        return [
            (str(old), new)
            for old, new in conn.execute(
                text("SELECT old, new_contribution FROM aggregate_changes ORDER BY seq")
            )
        ]


def _legacy_triggers(sql: AggregateSql) -> list[str]:
    """What an earlier version installed: the old contribution only."""
    insert = (
        "INSERT INTO aggregate_changes (name, row_id, old) "
        f"VALUES ({literal(sql.spec.name)}, OLD.id, {sql._contribution_json('OLD')})"
    )
    name, table = sql.trigger_name, sql.table
    if sql.dialect == "postgresql":
        return [
            f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $fn$ "
            f"BEGIN {insert}; RETURN NULL; END $fn$",
            f"CREATE TRIGGER {name} AFTER UPDATE OF id, handler, elapsed_ns, error_type OR DELETE"
            f" ON {table} FOR EACH ROW EXECUTE FUNCTION {name}()",
        ]
    return [
        f"CREATE TRIGGER {name}_u AFTER UPDATE OF id, handler, elapsed_ns, error_type"
        f" ON {table} BEGIN {insert}; END",
        f"CREATE TRIGGER {name}_d AFTER DELETE ON {table} BEGIN {insert}; END",
    ]


def test_an_update_reads_old_and_new_contributions_from_the_log(store: Store) -> None:
    rng = random.Random(1)
    _fill(store, rng, 60)
    with Aggregator(store, SPEC) as agg:
        agg.update()
        _edit(store, rng, 5)
        logged = _logged(store)
        assert len(logged) == 6
        assert all(new is not None for _, new in logged)
        assert logged[-1][1] == "null"  # the delete
        agg.update()
    assert stored(store.engine, SPEC) == oracle(store.engine, SPEC)
    assert _logged(store) == []


def test_changes_logged_by_earlier_triggers_are_applied_and_the_triggers_replaced(
    store: Store,
) -> None:
    rng = random.Random(2)
    _fill(store, rng, 60)
    with Aggregator(store, SPEC) as agg:
        agg.update()
        sql = agg.sql
    with store.engine.begin() as conn:
        for stmt in [*sql.drop_triggers(), *_legacy_triggers(sql)]:
            conn.exec_driver_sql(stmt)
    _edit(store, rng, 8)
    assert {new for _, new in _logged(store)} == {None}
    with Aggregator(store, SPEC) as agg:  # a new process of this version
        agg.update()
        assert stored(store.engine, SPEC) == oracle(store.engine, SPEC)
        _edit(store, rng, 4)
        assert None not in {new for _, new in _logged(store)}
        agg.update()
    assert stored(store.engine, SPEC) == oracle(store.engine, SPEC)


def test_an_edited_id_moves_the_rows_contribution(store: Store) -> None:
    rng = random.Random(3)
    _fill(store, rng, 30)
    with Aggregator(store, SPEC) as agg:
        agg.update()
        with store.engine.begin() as conn:
            conn.execute(text("DELETE FROM calls WHERE id = 5"))
            conn.execute(text("UPDATE calls SET id = 5, handler = 'z' WHERE id = 9"))
            conn.execute(text("UPDATE calls SET id = 1000 WHERE id = 12"))
        agg.update()
        assert stored(store.engine, SPEC) == oracle(store.engine, SPEC)
        cp = agg._saved
        assert cp is not None
        assert cp.last_id == 1000


def test_the_downgrade_drops_the_triggers_and_marks_the_aggregates_for_a_rebuild(
    store_url: str,
) -> None:
    store = open_store(store_url)
    try:
        _fill(store, random.Random(4), 30)
        with Aggregator(store, SPEC) as agg:
            agg.update()
            sql = agg.sql
    finally:
        store.close()
    engine = make_engine(store_url)
    try:
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "0008")
            query, params = sql.trigger_definitions()
            installed = conn.execute(text(query), params).all()
            assert installed == []
            cp = load_checkpoint(conn, SPEC.name)
            assert cp is not None
            assert '"fingerprint": "rebuild"' in cp.spec
    finally:
        engine.dispose()
    store = open_store(store_url)  # upgrades to the head again
    try:
        _edit(store, random.Random(5), 3)  # unlogged: the rebuild counts them
        with Aggregator(store, SPEC) as agg:
            assert agg.update().kind == "build"
        assert stored(store.engine, SPEC) == oracle(store.engine, SPEC)
    finally:
        store.close()
