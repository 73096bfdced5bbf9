"""Statements run on the driver's cursor fail as SQLAlchemy's would: an
aggregate whose store breaks mid-update reports one line naming its source,
and the totals stay as they were."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from collectbus.aggregate import AggregateSpec, Aggregator, driver, read_aggregates
from collectbus.errors import CollectError
from collectbus.store import open as open_store

SPEC = AggregateSpec(
    name="calls_by_handler",
    table="calls",
    keys=("handler",),
    measures=("elapsed_ns",),
    error_column="error_type",
)


def _insert(conn: object, first: int, count: int) -> None:
    rows = [
        {"h": f"h{i % 3}", "s": i, "e": 1000 + i, "err": None if i % 5 else "Timeout"}
        for i in range(first, first + count)
    ]
    conn.execute(  # type: ignore[attr-defined]
        text(
            "INSERT INTO calls (host, pid, thread_id, handler, qualname, started_ns,"
            " elapsed_ns, error_type) VALUES ('h', 1, 1, :h, 'q', :s, :e, :err)"
        ),
        rows,
    )


def test_a_driver_error_is_a_dbapi_error(store_url: str) -> None:
    store = open_store(store_url)
    try:
        with store.engine.connect() as conn, pytest.raises(DBAPIError) as caught:
            driver.rows(conn, "SELECT missing FROM no_such_table WHERE x = :x", {"x": 1})
        assert "no_such_table" in str(caught.value.orig)
    finally:
        store.close()


def test_a_broken_store_fails_the_update_in_one_line_and_keeps_the_totals(
    store_url: str,
) -> None:
    store = open_store(store_url)
    try:
        with store.engine.begin() as conn:
            _insert(conn, 0, 30)
        with Aggregator(store, SPEC) as agg:
            agg.update()
            before = {g.keys["handler"]: g.count for g in read_aggregates(store)[0].groups}
            assert sum(before.values()) == 30
            with store.engine.begin() as conn:
                _insert(conn, 30, 10)
                # What each update reads first is gone: the change log.
                conn.execute(text("ALTER TABLE aggregate_changes RENAME TO aggregate_changes_x"))
            with pytest.raises(CollectError) as caught:
                agg.update()
            message = str(caught.value)
            assert "\n" not in message
            assert "calls_by_handler" in message
            assert "aggregate_changes" in message
            after = {g.keys["handler"]: g.count for g in read_aggregates(store)[0].groups}
            assert after == before
            with store.engine.begin() as conn:
                conn.execute(text("ALTER TABLE aggregate_changes_x RENAME TO aggregate_changes"))
            agg.update()
            total = sum(g.count for g in read_aggregates(store)[0].groups)
            assert total == 40
    finally:
        store.close()


@pytest.mark.postgres
def test_an_update_replaces_a_connection_the_server_closed(postgres_url: str) -> None:
    """The aggregator keeps its store connection between updates; one the
    server dropped meanwhile (a restart, an idle timeout) is replaced, and the
    update goes through."""
    store = open_store(postgres_url)
    try:
        with store.engine.begin() as conn:
            _insert(conn, 0, 30)
        with Aggregator(store, SPEC) as agg:
            agg.update()  # the build
            agg.update()  # an update, on the connection it keeps
            with store.engine.begin() as conn:
                held = (
                    conn.execute(
                        text(
                            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                            " AND pid <> pg_backend_pid() AND state = 'idle'"
                        )
                    )
                    .scalars()
                    .all()
                )
                assert held  # the aggregator's connection, at least
                for pid in held:
                    conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
                _insert(conn, 30, 12)
            result = agg.update()
        assert result.rows_read == 12
        assert sum(g.count for g in read_aggregates(store)[0].groups) == 42
    finally:
        store.close()
