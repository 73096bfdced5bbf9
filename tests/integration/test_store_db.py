"""The store on real databases: a SQLite file and a fresh PostgreSQL database."""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from collectbus.errors import SchemaError, StoreError
from collectbus.records import CollectionEvent, HostSample
from collectbus.store import Store
from collectbus.store import open as open_store
from collectbus.store import store as store_module
from collectbus.store.compact import HOUR_NS
from collectbus.store.dberrors import DriverError, RefusedError
from collectbus.store.hostsamples import sample_rows
from collectbus.store.migrate import alembic_config, head_revision, upgrade
from collectbus.store.revision import read_revision
from collectbus.store.schema import COUNTED_TABLES, WIDE_TABLES, metadata
from collectbus.testing.hosts import make_host_sample

T0 = 1_700_000_000 * 10**9 // HOUR_NS * HOUR_NS  # an hour boundary
S = 10**9
Columns = dict[str, npt.NDArray[Any]]


@pytest.fixture
def store(migrated_store_url: str) -> Iterator[Store]:
    s = open_store(migrated_store_url)
    yield s
    s.close()


def _samples(hosts: Sequence[str], start_ns: int, count: int, step_s: int) -> list[HostSample]:
    return [
        make_host_sample(h, start_ns + i * step_s * S, psi=True, cgroup=True)
        for i in range(count)
        for h in hosts
    ]


def _write_cycles(store: Store, samples: list[HostSample]) -> None:
    for sample in samples:
        store.write([sample])


def _expected(samples: Sequence[HostSample], table: str) -> list[tuple[Any, ...]]:
    """The rows ``read_host`` should return, as sorted (host, time, *fields) tuples."""
    names = {s.host: i for i, s in enumerate(samples)}
    by_id = {i: h for h, i in names.items()}
    rows = sample_rows(samples, names)[table]
    key = WIDE_TABLES[table].key
    out = [(by_id[r[0]], *r[1:]) for r in rows]
    return sorted(out, key=lambda r: (r[0], r[2], r[1]) if key else (r[0], r[1]))


def _as_rows(columns: Columns) -> list[tuple[Any, ...]]:
    lists = []
    for column in columns.values():
        values = np.ma.getdata(column).tolist()
        mask = np.ma.getmaskarray(column).tolist()
        lists.append([None if m else v for v, m in zip(values, mask, strict=True)])
    return list(zip(*lists, strict=True))


def _read_all(store: Store, **window: Any) -> dict[str, list[tuple[Any, ...]]]:
    return {name: _as_rows(store.read_host(name, **window)) for name in WIDE_TABLES}


def _count(store: Store, table: str) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())


# ---------------------------------------------------------------- schema


def test_init_twice_is_harmless_and_status_reports_head(store_url: str) -> None:
    store = open_store(store_url, migrate=False)
    try:
        assert store.status()["revision"] is None
        store.init()
        store.init()
        status = store.status()
        assert status["revision"] == status["head"] == head_revision()
        assert status["up_to_date"] is True
        assert status["tables"] == dict.fromkeys(COUNTED_TABLES, 0)
        assert status["rows_estimated"] is True  # never analyzed on PostgreSQL: not -1
        assert store.status(exact=True)["tables"] == status["tables"]
    finally:
        store.close()
    with open_store(store_url) as again:  # migrate=True on a current schema
        assert again.status()["revision"] == head_revision()


def test_a_schema_newer_than_collectbus_is_a_clear_schema_error(store_url: str) -> None:
    open_store(store_url).close()
    engine = sa.create_engine(store_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999_future'"))
        with pytest.raises(SchemaError) as info:
            open_store(store_url)
        message = str(info.value)
        assert "schema at revision 9999_future, newer than this collectbus" in message
        assert f"it knows up to {head_revision()}" in message
        assert "\n" not in message
        assert "upgrade collectbus" in info.value.hint
        with engine.connect() as conn:  # left as it was
            version = conn.execute(sa.text("SELECT version_num FROM alembic_version"))
            assert version.scalar_one() == "9999_future"
    finally:
        engine.dispose()


def _migrated_through_the_chain(url: str) -> sa.Engine:
    """A new database brought to the newest revision by every migration in turn
    (a new database opened by the store is created from schema.py instead)."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        upgrade(conn)
    return engine


def test_migrated_schema_matches_schema_py(store_url: str) -> None:
    engine = _migrated_through_the_chain(store_url)
    try:
        with engine.connect() as conn:
            assert read_revision(conn) == head_revision()
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, metadata) == []
    finally:
        engine.dispose()


def _sqlite_layout(path: str) -> dict[str, object]:
    """What a SQLite schema is made of, table by table: columns (name, type, not
    null, default, key), indexes (name, unique, columns) and WITHOUT ROWID."""
    with sqlite3.connect(path) as db:
        tables = [
            (name, sql)
            for name, sql in db.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'table'"
                " AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        layout: dict[str, object] = {}
        for name, sql in tables:
            columns = [tuple(r[1:]) for r in db.execute(f'PRAGMA table_info("{name}")')]
            indexes = sorted(
                (index, unique, tuple(c[2] for c in db.execute(f'PRAGMA index_info("{index}")')))
                for _seq, index, unique, *_rest in db.execute(f'PRAGMA index_list("{name}")')
                if not index.startswith("sqlite_autoindex")
            )
            layout[name] = (columns, indexes, "WITHOUT ROWID" in sql.upper())
    return layout


def test_a_new_sqlite_file_gets_the_schema_the_migrations_build(tmp_path: Any) -> None:
    """A new database is created from schema.py and stamped: the same tables,
    columns, indexes and row layout as the migration chain gives, and later
    migrations (here: down to 0013 and up again) work on it."""
    chained = tmp_path / "chain.db"
    _migrated_through_the_chain(f"sqlite:///{chained}").dispose()
    created = tmp_path / "created.db"
    open_store(f"sqlite:///{created}").close()
    assert _sqlite_layout(str(created)) == _sqlite_layout(str(chained))
    engine = sa.create_engine(f"sqlite:///{created}")
    try:
        with engine.begin() as conn:
            assert read_revision(conn) == head_revision()
            command.downgrade(alembic_config(conn), "0013")
            assert read_revision(conn) == "0013"
            upgrade(conn)
            assert read_revision(conn) == head_revision()
    finally:
        engine.dispose()


# ---------------------------------------------------------------- writing


def test_write_then_read_round_trip(store: Store) -> None:
    samples = _samples(["b", "a"], T0, 4, 10)
    assert store.write(samples[:4]) == 4
    assert store.write(samples[4:]) == 4
    for table in WIDE_TABLES:
        assert _as_rows(store.read_host(table)) == _expected(samples, table), table
    only_a = _as_rows(store.read_host("cpu", host="a", since_ns=T0 + 10 * S, until_ns=T0 + 30 * S))
    assert only_a == [
        r
        for r in _expected(samples, "host_cpu")
        if r[0] == "a" and r[1] in (T0 + 10 * S, T0 + 20 * S)
    ]
    assert store.read_host("host_cpu", host="nobody")["host"].tolist() == []
    hosts = store.hosts()
    assert [(h["name"], h["first_seen_ns"], h["last_seen_ns"]) for h in hosts] == [
        ("a", T0, T0 + 30 * S),
        ("b", T0, T0 + 30 * S),
    ]


def test_columns_have_the_documented_types(store: Store) -> None:
    store.write(_samples(["a"], T0, 2, 1))
    disk = store.read_host("host_disk")
    assert list(disk)[:3] == ["host", "time_ns", "device"]
    assert disk["time_ns"].dtype == np.int64
    # Counters are nullable (a value out of range is stored as NULL, see
    # collectbus.values): masked arrays of int64 with nothing masked here.
    assert np.ma.getdata(disk["read_sectors"]).dtype == np.int64
    assert not np.ma.getmaskarray(disk["read_sectors"]).any()
    assert isinstance(disk["flush_ios"], np.ma.MaskedArray)
    load1 = store.read_host("host_load")["load1"]
    assert np.ma.getdata(load1).dtype == np.float64
    assert not np.ma.getmaskarray(load1).any()
    mem = store.read_host("host_mem")
    assert mem["unaccepted_bytes"].mask.all()
    assert not mem["mem_total_bytes"].mask.any()


def test_hosts_first_and_last_seen_follow_late_samples(store_url: str) -> None:
    with open_store(store_url) as store:
        store.write([make_host_sample("a", T0 + 100 * S)])
        store.write([make_host_sample("a", T0 + 50 * S)])  # cached id, earlier time
        store.write([make_host_sample("a", T0 + 200 * S)])
        [row] = store.hosts()
        assert (row["first_seen_ns"], row["last_seen_ns"]) == (T0 + 50 * S, T0 + 200 * S)
        with open_store(store_url) as other:  # another writer, its cache empty: an upsert
            other.write([make_host_sample("a", T0 + 10 * S)])
        [row] = store.hosts()
        assert (row["first_seen_ns"], row["last_seen_ns"]) == (T0 + 10 * S, T0 + 200 * S)


def test_collection_log(store: Store) -> None:
    events = [
        CollectionEvent(source="host", host="a", started_ns=T0 + i, duration_ns=5, status="ok")
        for i in range(3)
    ]
    failed = CollectionEvent(
        source="host", host="a", started_ns=T0 + 9, duration_ns=7, status="error",
        error="boom", stale=True,
    )  # fmt: skip
    assert store.write([*events, failed]) == 4
    rows = store.collection_log()
    assert [r["started_ns"] for r in rows] == [T0, T0 + 1, T0 + 2, T0 + 9]
    assert rows[-1]["error"] == "boom"
    assert rows[-1]["stale"] is True
    assert [r["started_ns"] for r in store.collection_log(limit=2)] == [T0 + 2, T0 + 9]
    assert len(store.collection_log(since_ns=T0 + 2)) == 2


def test_a_failed_cycle_leaves_nothing(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    good = make_host_sample("new-host", T0)
    event = CollectionEvent(
        source="host", host="new-host", started_ns=T0, duration_ns=1, status="ok"
    )
    real_insert = store_module.insert_rows

    def disk_fails_at_host_load(conn: sa.Connection, wide: Any, rows: Any, *, copy: bool) -> None:
        # The last table written fails as a disk does, after the other tables
        # of the cycle were already inserted.
        if wide.name == "host_load":
            raise DriverError(sqlite3.OperationalError("disk I/O error"))
        real_insert(conn, wide, rows, copy=copy)

    monkeypatch.setattr(store_module, "insert_rows", disk_fails_at_host_load)
    with pytest.raises(StoreError, match="write failed: disk I/O error") as info:
        store.write([good, event, make_host_sample("new-host", T0 + S)])
    assert not isinstance(info.value, RefusedError)
    assert "\n" not in str(info.value)
    assert all(n == 0 for n in store.status(exact=True)["tables"].values())  # type: ignore[union-attr]
    monkeypatch.undo()
    # The host id of the rolled-back cycle was not cached: the next write works.
    assert store.write([good]) == 1
    assert _count(store, "host_cpu") == 3
    assert len(store.hosts()) == 1


def test_a_mismatched_layout_is_left_out_and_quarantined(store: Store) -> None:
    bad = dataclasses.replace(make_host_sample("a", T0), vmstat=(1, 2, 3))
    store.write([make_host_sample("a", T0 - S), bad])
    assert _count(store, "host_cpu") == 6
    assert _count(store, "host_vmstat") == 1
    (held,) = store.status()["quarantine"]["latest"]  # type: ignore[index]
    assert held["table_name"] == "host_vmstat"
    assert held["reason"].startswith("sample.vmstat has 3 values, host_vmstat has ")
    assert held["value"] == "(1, 2, 3)"


def test_unknown_records_are_refused(store: Store) -> None:
    with pytest.raises(TypeError):
        store.write(["not a record"])  # type: ignore[list-item]


# ---------------------------------------------------------------- compaction


def test_compaction_moves_whole_old_hours_into_chunks(store: Store) -> None:
    samples = _samples(["a", "b"], T0, 900, 10)  # 2.5 hours
    store.write(samples)
    before = _read_all(store)
    window = {"since_ns": T0 + 3000 * S, "until_ns": T0 + 4000 * S, "host": "a"}
    before_window = _read_all(store, **window)
    # Now is 2.5 h after T0: with the 1 h default only the first hour is old.
    stats = store.compact(now_ns=T0 + 9000 * S)
    # The tables these samples fill (no cgroup row outside a container).
    filled = sum(1 for rows in sample_rows(samples[:1], {"a": 1}).values() if rows)
    assert stats.cutoff_ns == T0 + HOUR_NS
    assert stats.chunks == 2 * filled
    assert stats.merged == 0
    assert stats.rows == sum(
        len(r)
        for r in sample_rows(
            [s for s in samples if s.time_ns < T0 + HOUR_NS], {"a": 1, "b": 2}
        ).values()
    )
    with store.engine.connect() as conn:
        oldest = conn.execute(sa.text("SELECT min(time_ns) FROM host_cpu")).scalar_one()
    assert oldest == T0 + HOUR_NS
    assert _read_all(store) == before
    assert _read_all(store, **window) == before_window  # spans a chunk and recent rows
    # Everything older than 0 s: the two remaining hours (the last one partly filled).
    stats = store.compact(now_ns=T0 + 4 * HOUR_NS, older_than_s=0)
    assert stats.chunks == 2 * 2 * filled
    assert all(_count(store, t) == 0 for t in WIDE_TABLES)
    assert _read_all(store) == before
    assert store.compact(now_ns=T0 + 4 * HOUR_NS, older_than_s=0).chunks == 0


def test_a_late_row_is_merged_into_its_hours_chunk(store: Store) -> None:
    samples = _samples(["a"], T0, 360, 10)
    store.write(samples)
    store.compact(now_ns=T0 + 3 * HOUR_NS)
    late = make_host_sample("a", T0 + 5 * S, psi=True, cgroup=True)
    store.write([late])
    stats = store.compact(now_ns=T0 + 3 * HOUR_NS)
    assert (stats.chunks, stats.merged) == (len(WIDE_TABLES), len(WIDE_TABLES))
    assert _count(store, "host_chunks") == len(WIDE_TABLES)
    for table in WIDE_TABLES:
        assert _as_rows(store.read_host(table)) == _expected([*samples, late], table)


def test_compaction_is_one_transaction(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    store.write(_samples(["a"], T0, 30, 10))
    before = _read_all(store)

    def fail(_columns: object) -> bytes:
        raise RuntimeError("encoder crashed")

    monkeypatch.setattr("collectbus.store.compact.encode_chunk", fail)
    with pytest.raises(RuntimeError):
        store.compact(now_ns=T0 + 3 * HOUR_NS)
    assert _count(store, "host_chunks") == 0
    assert _count(store, "host_cpu") == 30 * 3
    assert _read_all(store) == before


# ---------------------------------------------------------------- concurrency


def test_readers_see_whole_cycles_while_a_writer_writes_and_compacts(store_url: str) -> None:
    writer, reader = open_store(store_url), open_store(store_url, migrate=False)
    old = _samples(["a"], T0, 120, 10)
    writer.write(old)
    reference = _as_rows(reader.read_host("host_cpu", until_ns=T0 + HOUR_NS))
    errors: list[BaseException] = []
    done = threading.Event()

    def write() -> None:
        try:
            for i in range(300):
                writer.write([make_host_sample("a", T0 + 2 * HOUR_NS + i * S)])
                if i == 150:
                    writer.compact(now_ns=T0 + 2 * HOUR_NS)  # moves the old hour into chunks
        except BaseException as err:  # noqa: BLE001 - handed to the main thread
            errors.append(err)
        finally:
            done.set()

    thread = threading.Thread(target=write)
    thread.start()
    seen, reads = 0, 0
    try:
        while not done.is_set():
            cpu = reader.read_host("host_cpu", host="a")
            assert len(cpu["time_ns"]) % 3 == 0  # never part of a cycle
            assert len(cpu["time_ns"]) >= seen
            seen = len(cpu["time_ns"])
            assert _as_rows(reader.read_host("host_cpu", until_ns=T0 + HOUR_NS)) == reference
            reads += 1
    finally:
        thread.join()
        writer.close()
    assert not errors, errors
    assert reads > 0, "the reader never ran while the writer wrote"
    assert len(reader.read_host("host_cpu", host="a")["time_ns"]) == (120 + 300) * 3
    assert _as_rows(reader.read_host("host_cpu", until_ns=T0 + HOUR_NS)) == reference
    reader.close()


# ---------------------------------------------------------------- SQLite only


def test_a_full_sqlite_database_is_a_clear_store_error(sqlite_url: str) -> None:
    store = open_store(sqlite_url)
    first = _samples(["a"], T0, 5, 1)
    store.write(first)
    with store.engine.connect() as conn:
        pages = int(conn.exec_driver_sql("PRAGMA page_count").scalar_one())

    def cap(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute(f"PRAGMA max_page_count={pages + 2}")

    sa.event.listen(store.engine, "connect", cap)
    store.engine.dispose()  # new connections get the cap
    with pytest.raises(StoreError, match="full") as info:
        store.write(_samples(["a"], T0 + 10 * S, 200, 1))
    assert "free space" in info.value.hint
    assert "\n" not in str(info.value)
    for table in WIDE_TABLES:
        assert _as_rows(store.read_host(table)) == _expected(first, table)
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA integrity_check").scalar_one() == "ok"
    store.close()


def test_sqlite_connections_are_configured(sqlite_url: str) -> None:
    with open_store(sqlite_url) as store, store.engine.connect() as conn:
        pragma = {
            p: conn.exec_driver_sql(f"PRAGMA {p}").scalar_one()
            for p in ("journal_mode", "synchronous", "busy_timeout", "foreign_keys")
        }
    assert pragma == {
        "journal_mode": "wal",
        "synchronous": 1,
        "busy_timeout": 10_000,
        "foreign_keys": 1,
    }


def test_rates_are_the_same_from_chunks_and_from_recent_rows(store: Store) -> None:
    from collectbus.analysis import rates

    store.write(_samples(["a", "b"], T0, 720, 10))  # two hours
    before = rates(store)
    assert store.compact(now_ns=T0 + 2 * HOUR_NS, older_than_s=0).chunks > 0
    pd_testing = pytest.importorskip("pandas.testing")
    pd_testing.assert_frame_equal(rates(store), before)
    assert before["cpu_percent"].iloc[1:720].round(6).eq(40).all()
