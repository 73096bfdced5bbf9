"""A value or row the database refuses is left out and kept in the quarantine
table; the rest of its collection is stored; each cause is logged once.

Run on SQLite and on PostgreSQL (``store_url``).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory

from collectbus.records import CallRecord, CollectionEvent, LoadRow, NetRow
from collectbus.store import Store
from collectbus.store import open as open_store
from collectbus.store.migrate import alembic_config, upgrade
from collectbus.store.quarantine import (
    HAS_NUL,
    NOT_FINITE,
    NOT_INT64,
    NOT_UTF8,
    OUT_OF_RANGE_AT_SOURCE,
)
from collectbus.testing.hosts import make_host_sample
from collectbus.values import out_of_range_details
from tests.integration.cli_helpers import collectbus_env, collectbus_in_process

T0 = 1_800_000_000 * 10**9
S = 10**9
#: What some NIC drivers print for a counter they do not keep.
NOT_AVAILABLE = 2**64 - 1


@pytest.fixture
def store(migrated_store_url: str) -> Iterator[Store]:
    with open_store(migrated_store_url) as s:
        yield s


def _count(store: Store, table: str) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())


def _held(store: Store) -> list[dict[str, object]]:
    with store.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT * FROM quarantine ORDER BY id")).mappings().all()
    return [dict(r) for r in rows]


def _net(iface: str, rx_bytes: int) -> NetRow:
    return NetRow(iface, rx_bytes, *([1] * 15))


def _event(time_ns: int, source: str = "host") -> CollectionEvent:
    return CollectionEvent(
        source=source, host="h1", started_ns=time_ns, duration_ns=1, status="ok", records=1
    )


def test_a_counter_past_int64_costs_only_itself(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    poisoned = dataclasses.replace(
        make_host_sample("h1", T0), net=(_net("lo", 10), _net("eth0", NOT_AVAILABLE))
    )
    with caplog.at_level(logging.WARNING, logger="collectbus.store"):
        assert store.write([poisoned, _event(T0)]) == 2
    # host_net's counters may be NULL: eth0's rx_bytes is stored as NULL, its
    # other counters and lo are stored, and so is every other table of the
    # same collection.
    net = store.read_host("net")
    rx = dict(zip(net["iface"], np.ma.getmaskarray(net["rx_bytes"]), strict=True))
    assert rx == {"lo": False, "eth0": True}
    assert 10 in list(np.ma.getdata(net["rx_bytes"]))
    assert not np.ma.getmaskarray(net["tx_bytes"]).any()
    assert _count(store, "host_cpu") == 3
    assert _count(store, "host_mem") == 1
    assert _count(store, "host_load") == 1
    (held,) = _held(store)
    assert held["table_name"] == "host_net"
    assert held["field"] == "rx_bytes"
    assert held["value"] == str(NOT_AVAILABLE)
    assert held["reason"] == NOT_INT64
    assert (held["host"], held["source"], held["time_ns"]) == ("h1", "host", T0)
    (logged,) = store.collection_log()
    assert logged["details"] == {"quarantined": "1"}
    status = store.status()["quarantine"]
    assert status["rows"] == 1  # type: ignore[index]
    assert status["latest"][0]["reason"] == held["reason"]  # type: ignore[index]
    (line,) = [r.getMessage() for r in caplog.records]
    assert "host_net.rx_bytes = 18446744073709551615 (host h1, source host)" in line
    assert store.url in line
    assert store.quarantined == 1


def test_each_cause_is_logged_once_and_every_value_counted(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="collectbus.store"):
        for i in range(5):
            sample = dataclasses.replace(
                make_host_sample("h1", T0 + i * S), net=(_net("eth0", NOT_AVAILABLE),)
            )
            store.write([sample, _event(T0 + i * S)])
    assert len(caplog.records) == 1
    assert store.quarantined == 5
    assert len(_held(store)) == 5
    assert _count(store, "host_cpu") == 15


def test_a_value_in_a_nullable_column_becomes_null(store: Store) -> None:
    sample = make_host_sample("h1", T0)
    assert sample.mem is not None
    mem = (NOT_AVAILABLE, *sample.mem[1:])
    store.write([dataclasses.replace(sample, mem=mem)])
    rows = store.read_host("mem")
    assert len(rows["time_ns"]) == 1
    first = next(iter(c for c in rows if c not in ("host", "time_ns")))
    assert bool(rows[first].mask[0])  # stored as NULL
    (held,) = _held(store)
    assert (held["table_name"], held["field"], held["reason"]) == ("host_mem", first, NOT_INT64)


@pytest.mark.parametrize(
    ("iface", "shown", "reason"),
    [("eth\x000", "'eth\\x000'", HAS_NUL), ("eth\udcff", "'eth\\udcff'", NOT_UTF8)],
)
def test_text_no_column_can_hold_leaves_out_its_row(
    store: Store, iface: str, shown: str, reason: str
) -> None:
    sample = dataclasses.replace(make_host_sample("h1", T0), net=(_net(iface, 1), _net("lo", 1)))
    store.write([sample])
    assert list(store.read_host("net")["iface"]) == ["lo"]
    (held,) = _held(store)
    assert (held["field"], held["value"]) == ("iface", shown)
    assert held["reason"] == f"{reason}; the row was left out"


def test_a_nan_load_is_null_and_quarantined(store: Store) -> None:
    sample = dataclasses.replace(
        make_host_sample("h1", T0), load=LoadRow(float("nan"), 0.5, 0.5, 1, 2, 3)
    )
    store.write([sample])
    load = store.read_host("load")
    assert list(np.ma.getmaskarray(load["load1"])) == [True]  # stored as NULL
    assert list(np.ma.getdata(load["load5"])) == [0.5]
    assert _count(store, "host_cpu") == 3
    (held,) = _held(store)
    assert (held["field"], held["value"]) == ("load1", "nan")
    assert held["reason"] == NOT_FINITE


def test_a_host_name_no_column_can_hold_leaves_out_that_hosts_records(store: Store) -> None:
    store.write([make_host_sample("bad\x00host", T0), make_host_sample("good", T0)])
    assert [h["name"] for h in store.hosts()] == ["good"]
    (held,) = _held(store)
    assert (held["table_name"], held["field"]) == ("hosts", "name")


def _refuse_eth1(store: Store) -> None:
    """A rule of the database that the checks before the INSERT do not know."""
    with store.engine.begin() as conn:
        if store.dialect == "sqlite":
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse_eth1 BEFORE INSERT ON host_net WHEN NEW.iface = 'eth1' "
                "BEGIN SELECT RAISE(ABORT, 'eth1 is refused'); END"
            )
            return
        conn.exec_driver_sql(
            "CREATE FUNCTION refuse_eth1() RETURNS trigger AS $$ BEGIN "
            "IF NEW.iface = 'eth1' THEN RAISE EXCEPTION 'eth1 is refused' "
            "USING ERRCODE = 'check_violation'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql"
        )
        conn.exec_driver_sql(
            "CREATE TRIGGER refuse_eth1 BEFORE INSERT ON host_net "
            "FOR EACH ROW EXECUTE FUNCTION refuse_eth1()"
        )


def test_a_refusal_the_checks_do_not_know_leaves_out_only_the_refused_row(store: Store) -> None:
    _refuse_eth1(store)
    ifaces = (_net("eth0", 1), _net("eth1", 1), _net("eth2", 1))
    sample = dataclasses.replace(make_host_sample("h1", T0), net=ifaces)
    assert store.write([sample, _event(T0)]) == 2
    assert list(store.read_host("net")["iface"]) == ["eth0", "eth2"]
    assert _count(store, "host_cpu") == 3
    (held,) = _held(store)
    assert (held["table_name"], held["field"]) == ("host_net", None)
    assert "eth1 is refused" in str(held["reason"])
    assert "'eth1'" in str(held["value"])
    assert store.collection_log()[0]["details"] == {"quarantined": "1"}
    # The next collection is written at once, in one piece.
    store.write([make_host_sample("h1", T0 + S), _event(T0 + S)])
    assert _count(store, "collection_log") == 2


@pytest.mark.postgres
def test_a_postgres_int32_column_past_its_range_is_caught_by_the_database(
    postgres_url: str,
) -> None:
    # SQLite has no 32-bit columns; PostgreSQL's INTEGER (calls.pid) is one.
    store = open_store(postgres_url)
    calls = [
        CallRecord(
            handler="h",
            qualname="m.h",
            host="h1",
            pid=pid,
            thread_id=1,
            started_ns=T0 + i,
            elapsed_ns=5,
        )
        for i, pid in enumerate((10, 2**40, 11))
    ]
    with store:
        assert store.write(calls) == 3
        assert [c["pid"] for c in store.calls()] == [10, 11]
        (held,) = _held(store)
    assert (held["table_name"], held["source"]) == ("calls", "calls")
    assert "out of range" in str(held["reason"])


def test_calls_past_int64_are_quarantined_and_the_others_stored(store: Store) -> None:
    calls = [
        CallRecord(
            handler="h",
            qualname="m.h",
            host="h1",
            pid=1,
            thread_id=1,
            started_ns=T0 + i,
            elapsed_ns=elapsed,
        )
        for i, elapsed in enumerate((5, 2**64, 7))
    ]
    store.write(calls)
    assert [c["elapsed_ns"] for c in store.calls()] == [5, 7]
    (held,) = _held(store)
    assert (held["table_name"], held["field"], held["value"]) == ("calls", "elapsed_ns", str(2**64))


def test_the_quarantine_migration_round_trips(store: Store) -> None:
    store.write([dataclasses.replace(make_host_sample("h1", T0), net=(_net("e", 2**64),))])
    with store.engine.begin() as conn:
        upgrade_down(conn)
        assert "quarantine" not in sa.inspect(conn).get_table_names()
    assert store.status()["quarantine"] is None
    with store.engine.begin() as conn:
        upgrade(conn)
    assert "quarantine" in sa.inspect(store.engine).get_table_names()
    store.write([dataclasses.replace(make_host_sample("h1", T0 + S), net=(_net("e", 2**64),))])
    assert len(_held(store)) == 1


def upgrade_down(conn: sa.Connection) -> None:
    """Down to the revision before the quarantine's."""
    config = alembic_config(conn)
    before = ScriptDirectory.from_config(config).get_revision("0010").down_revision
    command.downgrade(config, str(before))


def test_health_and_db_status_report_the_quarantine(
    store: Store, migrated_store_url: str, tmp_path: Path
) -> None:
    from collectbus.serve.http.api import health

    poisoned = dataclasses.replace(make_host_sample("h1", T0), net=(_net("eth0", NOT_AVAILABLE),))
    store.write([poisoned, _event(T0)])
    code, doc = health(store, None)
    assert code == 200  # refused data is reported, not an outage
    held = doc["store"]["quarantine"]  # type: ignore[index]
    assert held["rows"] == 1
    assert held["latest"][0]["field"] == "rx_bytes"
    env = collectbus_env(tmp_path, migrated_store_url)
    shown = collectbus_in_process("db", "status", cwd=tmp_path, env=env)
    assert shown.returncode == 0, shown.stderr
    assert "quarantined values and rows" in shown.stdout
    assert "host_net.rx_bytes" in shown.stdout
    assert str(NOT_AVAILABLE) in shown.stdout


def test_downgrading_past_nullable_counters_moves_their_rows_to_quarantine(store: Store) -> None:
    store.write([dataclasses.replace(make_host_sample("h1", T0), net=(_net("e", 2**64),))])
    assert _count(store, "host_net") == 1
    with store.engine.begin() as conn:
        config = alembic_config(conn)
        before = ScriptDirectory.from_config(config).get_revision("0013").down_revision
        command.downgrade(config, str(before))
    assert _count(store, "host_net") == 0
    assert _count(store, "host_cpu") == 3  # rows without a NULL stay
    moved = [h for h in _held(store) if h["field"] is None]
    assert [(h["table_name"], h["host"], h["time_ns"]) for h in moved] == [("host_net", "h1", T0)]
    assert "downgrade" in str(moved[0]["reason"])
    with store.engine.begin() as conn:
        upgrade(conn)
    columns = {c["name"]: c for c in sa.inspect(store.engine).get_columns("host_net")}
    assert columns["rx_bytes"]["nullable"]


def test_values_a_parser_replaced_are_reported_with_the_refused_ones(store: Store) -> None:
    details = out_of_range_details(["net.eth0.rx_bytes", "load.load1"])
    event = CollectionEvent(
        source="host", host="h1", started_ns=T0, duration_ns=5, status="ok", details=details
    )
    store.write([make_host_sample("h1", T0), event])
    (held,) = _held(store)
    assert (held["table_name"], held["field"], held["value"]) == (
        "host",
        "net.eth0.rx_bytes,load.load1",
        "2",
    )
    assert held["reason"] == OUT_OF_RANGE_AT_SOURCE
    assert (held["host"], held["time_ns"]) == ("h1", T0)
    (logged,) = store.collection_log()
    assert logged["details"] == dict(details)  # counted by the parser, not twice
    assert store.status()["quarantine"]["rows"] == 1  # type: ignore[index]
