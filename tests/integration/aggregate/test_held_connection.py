"""The connection an aggregator keeps for its updates has settings of its own
(SQLite: it leaves routine WAL checkpoints to the writers; PostgreSQL: the
write settings), and they never reach the pool's other connections."""

from __future__ import annotations

from sqlalchemy import text

from collectbus.aggregate import Aggregator
from collectbus.aggregate.checkpoint import SQLITE_WAL_CHECKPOINT_PAGES
from collectbus.store import Store
from tests.integration.aggregate.test_sketch_parts import SPEC


def _setting(conn: object, name: str, dialect: str) -> str:
    query = f"PRAGMA {name}" if dialect == "sqlite" else f"SHOW {name}"
    return str(conn.exec_driver_sql(query).scalar_one())  # type: ignore[attr-defined]


def test_the_held_connection_has_its_settings_and_the_pool_does_not(store: Store) -> None:
    dialect = store.dialect
    name, held_value = (
        ("wal_autocheckpoint", str(SQLITE_WAL_CHECKPOINT_PAGES))
        if dialect == "sqlite"
        else ("plan_cache_mode", "force_generic_plan")
    )
    with store.engine.connect() as conn:
        default = _setting(conn, name, dialect)
    assert default != held_value
    with Aggregator(store, SPEC) as agg:
        agg.update()
        agg.update()  # the held connection's
        held = agg._held._conn
        assert held is not None
        assert _setting(held, name, dialect) == held_value
        held.rollback()
        with store.engine.connect() as conn:
            assert _setting(conn, name, dialect) == default
    # Closed with its aggregator, not returned to the pool.
    for _ in range(3):
        with store.engine.connect() as conn:
            assert _setting(conn, name, dialect) == default
            conn.execute(text("SELECT 1"))
