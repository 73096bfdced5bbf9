"""ProcessCollector on the recorded tree of tests/data/procfs/pids-6.18, psutil as oracle."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from collectbus.clock import NS_PER_S, FakeClock
from collectbus.collectors.base import CollectContext
from collectbus.collectors.process.collector import ProcessCollector
from collectbus.records import ProcessRow, ProcessSample

DATA = Path(__file__).resolve().parents[3] / "data" / "procfs" / "pids-6.18"
ORACLE: dict[str, Any] = json.loads((DATA / "psutil_oracle.json").read_text())
PAGE = ORACLE["page_size"]

pytestmark = pytest.mark.skipif(
    os.sysconf("SC_CLK_TCK") != ORACLE["clk_tck"] or os.sysconf("SC_PAGE_SIZE") != PAGE,
    reason="the recording's clock ticks or page size differ from this machine's",
)


def _load(root: Path, snapshot: str) -> None:
    """Make ``root`` hold the snapshot ``t0`` or ``t1``, as /proc changes under a reader."""
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(DATA / snapshot, root)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    proc = tmp_path / "proc"
    _load(proc, "t0")
    return proc


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _collect(collector: ProcessCollector, clock: FakeClock) -> tuple[ProcessSample, CollectContext]:
    ctx = CollectContext(host="node1", clock=clock)
    (sample,) = collector.collect(ctx)
    return sample, ctx


def _two_ticks(root: Path, clock: FakeClock, top: int = 10) -> ProcessSample:
    """Collect t0, move the clock on by the recorded interval, collect t1."""
    collector = ProcessCollector(root, top=top)
    _collect(collector, clock)
    elapsed = ORACLE["t1"]["monotonic_s"] - ORACLE["t0"]["monotonic_s"]
    clock.advance(int(elapsed * NS_PER_S))
    _load(root, "t1")
    sample, ctx = _collect(collector, clock)
    assert ctx.problems == []
    return sample


def _by_pid(sample: ProcessSample) -> dict[int, ProcessRow]:
    return {row.pid: row for row in sample.processes}


def test_every_field_matches_psutil_at_the_same_moment(root: Path, clock: FakeClock) -> None:
    rows = _by_pid(_two_ticks(root, clock))
    expected = ORACLE["t1"]["processes"]
    assert sorted(rows) == sorted(int(pid) for pid in expected)
    for pid, want in expected.items():
        row = rows[int(pid)]
        assert row.name == want["name"]
        assert row.user == want["username"]
        assert row.threads == want["num_threads"]
        assert abs(row.rss_bytes - want["rss"]) <= 2 * PAGE
        assert (row.read_bytes, row.write_bytes) == (want["read_bytes"], want["write_bytes"])
        assert row.cpu_percent == pytest.approx(want["cpu_percent"], abs=3.0), pid


def test_the_busy_process_leads_the_top_by_cpu(root: Path, clock: FakeClock) -> None:
    sample = _two_ticks(root, clock, top=2)
    busy = ORACLE["pids"]["busy"]
    first = sample.processes[0]
    assert (first.pid, first.cpu_rank) == (busy, 1)
    ranked = [r for r in sample.processes if r.cpu_rank is not None]
    assert [r.cpu_rank for r in ranked] == [1, 2]
    cpu = [r.cpu_percent for r in ranked]
    assert cpu == sorted(cpu, reverse=True)
    by_mem = sorted((r for r in sample.processes if r.mem_rank), key=lambda r: r.mem_rank or 0)
    assert len(by_mem) == 2
    assert by_mem[0].rss_bytes >= by_mem[1].rss_bytes
    assert sample.seen == 4
    assert sample.vanished == 0


def test_a_name_with_spaces_and_parentheses_is_read_whole(root: Path, clock: FakeClock) -> None:
    rows = _by_pid(_two_ticks(root, clock))
    odd = rows[ORACLE["pids"]["odd_name"]]
    assert odd.name == "(a) b)"
    assert odd.threads == 1
    assert odd.command.endswith("time.sleep(30)")


def test_io_root_cannot_read_is_none_not_an_error(root: Path, clock: FakeClock) -> None:
    init = _by_pid(_two_ticks(root, clock))[1]
    assert (init.read_bytes, init.write_bytes) == (None, None)
    assert init.user == "root"


def test_the_first_collection_has_no_cpu_percent(root: Path, clock: FakeClock) -> None:
    sample, ctx = _collect(ProcessCollector(root, top=10), clock)
    assert ctx.problems == []
    assert all(r.cpu_percent is None and r.cpu_rank is None for r in sample.processes)
    assert sorted(r.mem_rank for r in sample.processes if r.mem_rank) == [1, 2, 3, 4]


def test_a_pid_that_vanishes_after_the_listing_is_counted_not_reported(
    root: Path, clock: FakeClock
) -> None:
    collector = ProcessCollector(root, top=10)
    gone = str(ORACLE["pids"]["odd_name"])
    collector.after_listing = lambda pids: shutil.rmtree(root / gone) if gone in pids else None
    sample, ctx = _collect(collector, clock)
    assert (sample.seen, sample.vanished) == (4, 1)
    assert int(gone) not in _by_pid(sample)
    assert ctx.problems == []
    assert ("vanished", "1") in ctx.details


def test_an_empty_stat_is_a_process_being_reaped(root: Path, clock: FakeClock) -> None:
    busy = ORACLE["pids"]["busy"]
    (root / str(busy) / "stat").write_bytes(b"")
    sample, ctx = _collect(ProcessCollector(root, top=10), clock)
    assert (sample.vanished, ctx.problems) == (1, [])
    assert busy not in _by_pid(sample)


def test_a_garbage_stat_is_one_problem_and_the_rest_is_collected(
    root: Path, clock: FakeClock
) -> None:
    busy = ORACLE["pids"]["busy"]
    (root / str(busy) / "stat").write_bytes(b"garbage without a name\n")
    sample, ctx = _collect(ProcessCollector(root, top=10), clock)
    assert len(ctx.problems) == 1
    assert f"{root}/{busy}/stat" in str(ctx.problems[0])
    assert sample.errors == (str(ctx.problems[0]),)
    assert busy not in _by_pid(sample)
    assert len(sample.processes) == 3


def test_a_pid_used_again_is_a_new_process(root: Path, clock: FakeClock) -> None:
    collector = ProcessCollector(root, top=10)
    _collect(collector, clock)
    busy = ORACLE["pids"]["busy"]
    stat = root / str(busy) / "stat"
    head, _, rest = stat.read_bytes().rpartition(b")")
    fields = rest.split()
    fields[19] = str(int(fields[19]) + 10**9).encode()  # another start time: not the same process
    stat.write_bytes(head + b") " + b" ".join(fields) + b"\n")
    clock.advance(NS_PER_S)
    sample, _ = _collect(collector, clock)
    assert _by_pid(sample)[busy].cpu_percent is None


def test_an_unlistable_root_is_a_collect_error(tmp_path: Path, clock: FakeClock) -> None:
    from collectbus.errors import CollectError

    with pytest.raises(CollectError, match="cannot list"):
        _collect(ProcessCollector(tmp_path / "missing"), clock)
