"""Row counts of ``Store.status`` and ``collectbus db status``: estimated by
default, counted with ``exact=True`` / ``--exact``, on real SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from collectbus.clock import NS_PER_S
from collectbus.records import CallRecord, CollectionEvent
from collectbus.store import Store
from collectbus.store import open as open_store
from collectbus.store.rowcounts import METHOD_DESCRIPTIONS, rowid_range_query
from collectbus.store.schema import COUNTED_TABLES, metadata
from collectbus.testing.hosts import make_host_sample
from tests.integration.cli_helpers import collectbus_env, collectbus_in_process

T0 = 1_700_000_000 * NS_PER_S


@pytest.fixture
def store(migrated_store_url: str) -> Iterator[Store]:
    with open_store(migrated_store_url) as s:
        yield s


def _fill(store: Store, ticks: int) -> None:
    for i in range(ticks):
        t = T0 + i * NS_PER_S
        store.write(
            [
                make_host_sample("a", t),
                make_host_sample("b", t),
                CollectionEvent(source="host", host="a", started_ns=t, duration_ns=1, status="ok"),
                CallRecord(
                    handler="h",
                    qualname="m.h",
                    host="a",
                    pid=1,
                    thread_id=1,
                    started_ns=t,
                    elapsed_ns=10,
                ),
            ]
        )


def _counted(store: Store) -> dict[str, int]:
    with store.engine.connect() as conn:
        return {
            name: int(conn.execute(sa.text(f"SELECT count(*) FROM {name}")).scalar_one())
            for name in COUNTED_TABLES
        }


def _analyze(store: Store) -> None:
    if store.dialect == "postgresql":
        with store.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")


def test_exact_counts_equal_count_star(store: Store) -> None:
    _fill(store, 30)
    status = store.status(exact=True)
    assert status["rows_estimated"] is False
    assert status["rows_method"] == "count"
    assert status["tables"] == _counted(store)
    assert list(status["tables"]) == list(COUNTED_TABLES)  # type: ignore[call-overload]


def test_estimates_are_close_to_the_counts_after_inserts(store: Store) -> None:
    _fill(store, 300)
    _analyze(store)
    exact = _counted(store)
    assert exact["host_cpu"] > 0  # something to estimate
    assert exact["calls"] > 0
    status = store.status()
    assert status["rows_estimated"] is True
    assert status["rows_method"] == ("planner" if store.dialect == "postgresql" else "rowid_range")
    estimates = status["tables"]
    assert isinstance(estimates, dict)
    assert set(estimates) == set(COUNTED_TABLES)
    for name, n in exact.items():
        if store.dialect == "sqlite":
            assert estimates[name] == n, name  # nothing deleted: no gaps in the rowids
        else:
            assert abs(estimates[name] - n) <= n * 0.05, (name, estimates[name], n)


def test_the_estimate_follows_growth_after_analyze(store: Store) -> None:
    _fill(store, 100)
    _analyze(store)
    _fill(store, 200)  # twice as many rows again, not analyzed
    exact = _counted(store)["host_cpu"]
    estimate = store.status()["tables"]["host_cpu"]  # type: ignore[index]
    # On PostgreSQL: reltuples of the last ANALYZE, scaled by the pages added since.
    assert abs(estimate - exact) <= exact * 0.1, (estimate, exact)


def test_sqlite_estimate_is_an_upper_bound_when_rows_were_deleted(sqlite_url: str) -> None:
    with open_store(sqlite_url) as store:
        _fill(store, 20)
        with store.engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM host_cpu WHERE rowid % 3 = 0"))
        exact = _counted(store)
        estimates = store.status()["tables"]
        assert isinstance(estimates, dict)
        assert all(estimates[name] >= n for name, n in exact.items())
        with store.engine.connect() as conn:
            high, low = conn.execute(sa.text("SELECT max(rowid), min(rowid) FROM host_cpu")).one()
        assert estimates["host_cpu"] == high - low + 1 > exact["host_cpu"]


def test_sqlite_estimate_descends_the_rowid_btree_and_scans_nothing(sqlite_url: str) -> None:
    with open_store(sqlite_url) as store, store.engine.connect() as conn:
        for name in COUNTED_TABLES:
            sql = str(
                rowid_range_query(metadata.tables[name]).compile(dialect=store.engine.dialect)
            )
            plan = [row[3] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")]
            searches = [step for step in plan if step.startswith("SEARCH ")]
            scans = [
                step for step in plan if step.startswith("SCAN ") and "CONSTANT ROW" not in step
            ]
            assert len(searches) == 2, (name, plan)
            assert not scans, (name, plan)


@pytest.mark.postgres
@pytest.mark.parametrize("analyzed_empty", [False, True])
def test_postgresql_table_without_statistics_uses_live_rows(
    postgres_url: str, analyzed_empty: bool
) -> None:
    """reltuples is -1 before the first VACUUM or ANALYZE, and 0 over 0 pages
    after one of an empty table: the estimate is n_live_tup then, not -1 or 0."""
    rows = 40  # under autovacuum's analyze threshold (50): no ANALYZE comes in between
    with open_store(postgres_url) as store:
        if analyzed_empty:
            _analyze(store)
        with store.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO hosts (name, first_seen_ns, last_seen_ns) "
                    "SELECT 'h' || g, 0, 0 FROM generate_series(1, :n) AS g"
                ),
                {"n": rows},
            )
            # Report this backend's statistics when the transaction ends, not up
            # to a second later: the estimate below reads them.
            conn.execute(sa.text("SELECT pg_stat_force_next_flush()"))
        with store.engine.connect() as conn:
            reltuples, relpages = conn.execute(
                sa.text("SELECT reltuples, relpages FROM pg_class WHERE oid = 'hosts'::regclass")
            ).one()
        assert reltuples < 0 or relpages == 0  # no statistics to scale
        assert store.status()["tables"]["hosts"] == rows  # type: ignore[index]


def test_db_status_marks_estimates_and_counts_with_exact(tmp_path: Path, store_url: str) -> None:
    with open_store(store_url) as store:
        _fill(store, 10)
        exact = _counted(store)
        method = str(store.status()["rows_method"])
    env = collectbus_env(tmp_path, store_url)

    estimated = collectbus_in_process("db", "status", "--format", "json", cwd=tmp_path, env=env)
    assert estimated.returncode == 0, estimated.stderr
    document = json.loads(estimated.stdout)
    assert document["rows_method"] == method
    assert document["rows_estimated"] is True
    assert set(document["tables"]) >= set(COUNTED_TABLES)

    counted = collectbus_in_process(
        "db", "status", "--exact", "--format", "json", cwd=tmp_path, env=env
    )
    assert counted.returncode == 0, counted.stderr
    counted_document = json.loads(counted.stdout)
    assert counted_document["rows_method"] == "count"
    assert counted_document["rows_estimated"] is False
    assert {name: counted_document["tables"][name] for name in COUNTED_TABLES} == exact
    assert set(counted_document) == set(document)  # the same keys with or without --exact

    as_csv = collectbus_in_process(
        "db", "status", "--exact", "--format", "csv", cwd=tmp_path, env=env
    )
    assert as_csv.returncode == 0, as_csv.stderr
    assert as_csv.stdout.splitlines()[0] == "item,value"
    assert f"tables.host_cpu,{exact['host_cpu']}" in as_csv.stdout.splitlines()

    table = collectbus_in_process("db", "status", cwd=tmp_path, env=env)
    assert table.returncode == 0, table.stderr
    assert "rows in host_cpu (estimate)" in table.stdout
    assert METHOD_DESCRIPTIONS[method] in table.stdout  # type: ignore[index]
