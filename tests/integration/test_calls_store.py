"""Recorded calls in real databases: writing, reading, many processes, the bus, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from collectbus.bus import CollectionBus, Result
from collectbus.calls import CallFlusher, CallRecorder, CallSource
from collectbus.collectors.base import CollectContext
from collectbus.errors import StoreError
from collectbus.records import CallRecord, CollectionEvent
from collectbus.store import Store
from collectbus.store import open as open_store
from collectbus.store.migrate import head_revision, upgrade
from collectbus.testing.hosts import make_host_sample
from tests.integration.cli_helpers import collectbus, collectbus_env

T0 = 1_700_000_000 * 10**9


@pytest.fixture
def store(migrated_store_url: str) -> Iterator[Store]:
    s = open_store(migrated_store_url)
    yield s
    s.close()


def _call(i: int, *, handler: str = "h", elapsed_ns: int = 1000, error: bool = False) -> CallRecord:
    return CallRecord(
        handler=handler,
        qualname=f"app.{handler}",
        host="host-a",
        pid=100,
        thread_id=2**64 - 1 if i == 0 else 7,  # the largest unsigned thread id still fits
        started_ns=T0 + i * 10**6,
        elapsed_ns=elapsed_ns,
        error_type="ValueError" if error else None,
        error_message="bad" if error else None,
        traceback="app.py:1 in h" if error else None,
        args="int" if i % 2 else None,
    )


def test_calls_round_trip_and_filters(store: Store) -> None:
    records = [_call(i, handler="ab"[i % 2], elapsed_ns=i, error=i % 5 == 0) for i in range(20)]
    event = CollectionEvent(
        source="calls", host="host-a", started_ns=T0, duration_ns=1, status="ok"
    )
    assert store.write([*records, event]) == 21
    rows = store.calls()
    assert [r["elapsed_ns"] for r in rows] == list(range(20))
    assert rows[0]["thread_id"] == -1  # stored as a signed BIGINT
    assert rows[5]["error_message"] == "bad"
    assert rows[1]["args"] == "int"
    assert [r["elapsed_ns"] for r in store.calls(limit=3)] == [17, 18, 19]
    assert [r["elapsed_ns"] for r in store.calls(slowest=2)] == [19, 18]
    assert [r["elapsed_ns"] for r in store.calls(handler="b", slowest=1)] == [19]
    assert [r["elapsed_ns"] for r in store.calls(errors=True)] == [0, 5, 10, 15]
    assert len(store.calls(errors=False)) == 16
    window = store.calls(since_ns=T0 + 5 * 10**6, until_ns=T0 + 7 * 10**6)
    assert [r["elapsed_ns"] for r in window] == [5, 6]
    timings = store.call_timings(handler="a")
    assert timings["elapsed_ns"].tolist() == list(range(0, 20, 2))
    assert [e is not None for e in timings["error_type"].tolist()] == [
        i % 5 == 0 for i in range(0, 20, 2)
    ]
    assert store.status(exact=True)["tables"]["calls"] == 20  # type: ignore[index]


def test_a_database_at_0001_is_migrated_keeping_its_data(store_url: str) -> None:
    with open_store(store_url, migrate=False) as store:
        with store.engine.begin() as conn:
            upgrade(conn, "0001")
        store.write([make_host_sample("a", T0)])
        with pytest.raises(StoreError, match="schema"):
            store.write([_call(1)])
        store.migrate()
        assert store.status()["revision"] == head_revision()
        assert store.write([_call(1)]) == 1
        assert len(store.read_host("host_cpu")["time_ns"]) == 3


# A program that records calls and flushes them to the shared database.
WRITER = textwrap.dedent(
    """
    import sys
    from collectbus.calls import CallRecorder, CallFlusher
    from collectbus.store import open as open_store

    url, calls_to_make, use_thread = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "thread"
    calls = CallRecorder(max_history=calls_to_make)

    @calls(name="work")
    def work(i):
        if i % 100 == 99:
            raise ValueError(i)
        return i

    store = open_store(url, migrate=False)
    flusher = CallFlusher(calls, store, every=0.05)
    if use_thread:
        flusher.start()
    for i in range(calls_to_make):
        try:
            work(i)
        except ValueError:
            pass
        if not use_thread and i % 500 == 0:
            calls.flush_to(store)
    flusher.stop()
    store.close()
    print(flusher.written, calls.flush_missed, flusher.failures)
    """
)


@pytest.mark.slow
def test_two_processes_flush_to_one_database(store_url: str, tmp_path: Path) -> None:
    open_store(store_url).close()  # the schema, created once
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    per_process = 3000
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), store_url, str(per_process), mode],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for mode in ("thread", "inline")
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        missed, failures = out.split()[1:]
        assert (missed, failures) == ("0", "0"), out
    with open_store(store_url) as store:
        rows = store.calls(limit=None)
    by_pid = Counter(r["pid"] for r in rows)
    assert sorted(by_pid.values()) == [per_process, per_process]
    assert set(by_pid) == {p.pid for p in procs}
    assert sum(r["error_type"] == "ValueError" for r in rows) == 2 * (per_process // 100)
    assert {r["handler"] for r in rows} == {"work"}


def test_the_bus_delivers_calls_in_batches_to_the_store(store: Store) -> None:
    calls = CallRecorder()
    work = calls.wrap(lambda i: i, name="work")
    bus = CollectionBus(host="host-a")
    source = CallSource(calls)
    bus.add(source, tier="fast")
    written: list[int] = []

    def sink(result: Result) -> None:
        written.append(store.write((*result.records, result.event)))

    bus.subscribe(sink, name="store")
    for i in range(5):
        work(i)
    first = bus.collect_now("calls")
    for i in range(3):
        work(i)
    second = bus.collect_now("calls")
    assert (len(first.records), len(second.records)) == (5, 3)
    assert all(isinstance(r, CallRecord) for r in second.records)
    bus.stop()
    assert written == [6, 4]  # each batch with its collection_log entry
    assert len(store.calls()) == 8
    assert (source.delivered, source.missed) == (8, 0)


def test_calls_evicted_before_a_collection_are_counted_as_missed() -> None:
    calls = CallRecorder(max_history=10)
    work = calls.wrap(lambda i: i, name="work")
    source = CallSource(calls)
    for i in range(25):
        work(i)
    ctx = CollectContext(host="h")
    assert len(source.collect(ctx)) == 10
    assert (source.delivered, source.missed) == (10, 15)
    work(0)
    assert len(source.collect(ctx)) == 1
    assert source.missed == 15


def test_a_failed_flush_offers_the_same_calls_again(store_url: str) -> None:
    calls = CallRecorder()
    work = calls.wrap(lambda i: i, name="work")
    for i in range(3):
        work(i)

    class Down:
        def write(self, records: object) -> int:
            raise StoreError("db: write failed: the server is shutting down")

    flusher = CallFlusher(calls, Down())
    assert flusher.flush() == 0
    assert flusher.failures == 1
    with open_store(store_url) as store:
        assert calls.flush_to(store) == 3
        assert calls.flush_to(store) == 0
        work(9)
        assert calls.flush_to(store) == 1
        assert len(store.calls()) == 4


@pytest.mark.slow
def test_collectbus_calls_cli(store_url: str, tmp_path: Path) -> None:
    now = time.time_ns()
    records = [
        CallRecord(
            handler="api.get" if i % 3 else "api.put",
            qualname="app.api",
            host="host-a",
            pid=1,
            thread_id=1,
            started_ns=now - (100 - i) * 10**9,
            elapsed_ns=(i + 1) * 10**6,
            error_type="KeyError" if i % 10 == 0 else None,
            error_message="'x'" if i % 10 == 0 else None,
        )
        for i in range(30)
    ]
    with open_store(store_url) as store:
        store.write(records)
    env = collectbus_env(tmp_path, store_url)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        done = collectbus("calls", *args, cwd=tmp_path, env=env)
        assert done.returncode == 0, done.stderr
        return done

    newest = json.loads(run("--format", "json", "--limit", "5").stdout)
    assert [r["elapsed_ns"] for r in newest] == [(i + 1) * 10**6 for i in range(25, 30)]
    assert newest[0]["time"].endswith("Z")
    slowest = json.loads(run("--slowest", "2", "--handler", "api.put", "--format", "json").stdout)
    assert [r["elapsed_ns"] for r in slowest] == [28 * 10**6, 25 * 10**6]
    errors = json.loads(run("--errors", "--format", "json").stdout)
    assert [r["error_type"] for r in errors] == ["KeyError"] * 3
    stats = {r["handler"]: r for r in json.loads(run("--stats", "--format", "json").stdout)}
    assert (stats["api.put"]["calls"], stats["api.put"]["errors"]) == (10, 1)  # i = 0
    assert (stats["api.get"]["calls"], stats["api.get"]["errors"]) == (20, 2)  # i = 10, 20
    assert stats["api.get"]["max_s"] == pytest.approx(0.030)
    csv = run("--stats", "--format", "csv").stdout.splitlines()
    assert csv[0].startswith("handler,calls,errors")
    table = run("--stats").stdout
    assert "api.get" in table
    assert "p95_ms" in table
    assert "api.put" in run().stdout
    empty = collectbus("calls", "--since", "1s", "--format", "json", cwd=tmp_path, env=env)
    assert (empty.returncode, empty.stdout.strip()) == (0, "[]")
    bad = collectbus("calls", "--stats", "--slowest", "3", cwd=tmp_path, env=env)
    assert bad.returncode == 2


def test_sqlite_calls_table_plan_uses_the_handler_index(sqlite_url: str) -> None:
    with open_store(sqlite_url) as store, store.engine.connect() as conn:
        plan = conn.execute(
            sa.text(
                "EXPLAIN QUERY PLAN SELECT * FROM calls "
                "WHERE handler = 'x' AND started_ns >= 0 ORDER BY started_ns"
            )
        ).all()
    assert any("ix_calls_handler_started_ns" in str(row) for row in plan), plan


def test_flusher_thread_writes_while_calls_are_made(store: Store) -> None:
    calls = CallRecorder()
    work = calls.wrap(lambda i: i, name="work")
    with CallFlusher(calls, store, every=0.01) as flusher:
        for i in range(20_000):
            work(i)
    assert flusher.failures == 0
    # Calls evicted before a flush reached them are counted, never silently lost.
    assert flusher.written + calls.flush_missed == 20_000
    assert len(store.calls(limit=None)) == flusher.written > 0
