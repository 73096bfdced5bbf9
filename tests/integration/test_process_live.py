"""ProcessCollector on the live /proc, with psutil as oracle at the same moments."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import psutil
import pytest

from collectbus.collectors.base import CollectContext
from collectbus.collectors.process.collector import ProcessCollector
from collectbus.records import ProcessSample

PAGE = os.sysconf("SC_PAGE_SIZE")


@pytest.fixture
def busy() -> Iterator[subprocess.Popen[bytes]]:
    child = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    time.sleep(0.2)  # past the interpreter's start
    yield child
    child.kill()
    child.wait()


def _collect(collector: ProcessCollector) -> tuple[ProcessSample, CollectContext]:
    ctx = CollectContext(host="here")
    (sample,) = collector.collect(ctx)
    return sample, ctx


def test_a_busy_child_is_in_the_top_with_psutils_cpu_percent(
    busy: subprocess.Popen[bytes],
) -> None:
    collector = ProcessCollector("/proc", top=10)
    oracle = psutil.Process(busy.pid)
    _collect(collector)
    oracle.cpu_percent(None)
    time.sleep(1.0)
    sample, ctx = _collect(collector)
    psutil_cpu = oracle.cpu_percent(None)
    rss = oracle.memory_info().rss
    rows = {r.pid: r for r in sample.processes}
    assert busy.pid in rows, "the busy child is not in the top 10 by CPU"
    row = rows[busy.pid]
    assert row.cpu_rank is not None
    # A CPU kept busy reads 100 % on an idle machine; on a shared one psutil,
    # measuring over the same second, says how much it really had.
    assert row.cpu_percent == pytest.approx(psutil_cpu, abs=10.0)
    assert row.cpu_percent is not None
    assert row.cpu_percent > 20.0
    assert abs(row.rss_bytes - rss) <= 2 * PAGE
    assert row.threads == oracle.num_threads()
    assert row.user == oracle.username()
    io = oracle.io_counters()
    assert (row.read_bytes, row.write_bytes) == (io.read_bytes, io.write_bytes)
    assert row.name == oracle.name()
    assert row.command == " ".join(oracle.cmdline())
    assert sample.seen >= len(psutil.pids()) // 2
    assert all("stat" not in str(p) for p in ctx.problems)


def test_io_is_none_exactly_where_psutil_is_denied() -> None:
    sample, _ = _collect(ProcessCollector("/proc", top=100_000))
    checked = 0
    for row in sample.processes:
        try:
            io = psutil.Process(row.pid).io_counters()
        except psutil.AccessDenied:
            assert (row.read_bytes, row.write_bytes) == (None, None), row
        except psutil.NoSuchProcess:
            continue
        else:
            assert row.read_bytes is not None, row
            assert row.read_bytes <= io.read_bytes, row
        checked += 1
    assert checked > 0


def test_processes_exiting_all_the_time_are_no_errors() -> None:
    stop = threading.Event()

    def churn() -> None:
        while not stop.is_set():
            subprocess.run(["true"], check=False)

    threads = [threading.Thread(target=churn) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        collector = ProcessCollector("/proc", top=5)
        for _ in range(20):
            sample, ctx = _collect(collector)
            assert ctx.problems == [], ctx.problems
            assert sample.errors == ()
            assert sample.vanished >= 0
    finally:
        stop.set()
        for thread in threads:
            thread.join()
