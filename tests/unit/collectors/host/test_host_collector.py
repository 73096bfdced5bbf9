"""HostCollector on a procfs fixture tree, and once on the live /proc."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.unit.collectors.host.conftest import fixture_collector

from collectbus.clock import FakeClock
from collectbus.collectors.base import CollectContext, Collector
from collectbus.collectors.host.collector import HostCollector, ProcFile
from collectbus.collectors.host.parse import (
    parse_diskstats,
    parse_loadavg,
    parse_meminfo,
    parse_net_dev,
    parse_stat,
    parse_vmstat,
)
from collectbus.errors import CollectError, ParseError
from collectbus.records import HostSample

T0 = 1_700_000_000 * 10**9


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start_ns=T0)


@pytest.fixture
def ctx(clock: FakeClock) -> CollectContext:
    return CollectContext(host="node1", clock=clock)


@pytest.fixture
def collector(proc_root: Path) -> Iterator[HostCollector]:
    host = fixture_collector(proc_root)
    yield host
    host.close()


def only(samples: list[HostSample]) -> HostSample:
    assert len(samples) == 1
    return samples[0]


def rewrite(path: Path, data: bytes) -> None:
    """Change a file in place, as /proc does: the collector keeps it open."""
    with path.open("r+b") as file:
        file.write(data)
        file.truncate()


def expected_sample(root: Path) -> dict[str, object]:
    """What the pure parsers make of the files under ``root``."""
    cpus, stat = parse_stat((root / "stat").read_bytes())
    return {
        "cpu": cpus,
        "stat": stat,
        "mem": parse_meminfo((root / "meminfo").read_bytes()),
        "vmstat": parse_vmstat((root / "vmstat").read_bytes()),
        "disk": parse_diskstats((root / "diskstats").read_bytes()),
        "net": parse_net_dev((root / "net" / "dev").read_bytes()),
        "load": parse_loadavg((root / "loadavg").read_bytes()),
    }


def fields(sample: HostSample) -> dict[str, object]:
    return {
        name: getattr(sample, name)
        for name in ("cpu", "stat", "mem", "vmstat", "disk", "net", "load")
    }


def test_is_a_collector(collector: HostCollector) -> None:
    assert isinstance(collector, Collector)
    assert collector.name == "host"


def test_one_sample(collector: HostCollector, ctx: CollectContext, proc_root: Path) -> None:
    sample = only(collector.collect(ctx))
    assert (sample.host, sample.time_ns, sample.errors) == ("node1", T0, ())
    assert fields(sample) == expected_sample(proc_root)
    assert [row.cpu for row in sample.cpu] == [-1, 0, 1]
    assert [row.iface for row in sample.net] == ["lo", "ifb0", "ifb1", "eth0"]
    assert ctx.problems == []
    assert collector.unknown_keys == {"meminfo": (), "vmstat": ()}


def test_host_override_and_clock(proc_root: Path, ctx: CollectContext, clock: FakeClock) -> None:
    collector = fixture_collector(str(proc_root), host="login1")
    clock.advance(5 * 10**9)
    sample = only(collector.collect(ctx))
    collector.close()
    assert (sample.host, sample.time_ns) == ("login1", T0 + 5 * 10**9)


def test_malformed_meminfo_costs_only_meminfo(
    collector: HostCollector, ctx: CollectContext, proc_root: Path, edge_dir: Path
) -> None:
    shutil.copyfile(edge_dir / "meminfo_malformed", proc_root / "meminfo")
    sample = only(collector.collect(ctx))
    assert sample.mem is None
    assert sample.cpu
    assert sample.stat is not None
    assert sample.vmstat is not None
    assert sample.disk
    assert sample.net
    assert sample.load is not None
    (error,) = sample.errors
    assert error.startswith(f"{proc_root / 'meminfo'}:5: ")
    (problem,) = ctx.problems
    assert isinstance(problem, ParseError)
    assert (problem.source, problem.line) == (str(proc_root / "meminfo"), 5)
    assert str(problem) == error


def test_malformed_after_good_reads(
    collector: HostCollector, ctx: CollectContext, proc_root: Path, edge_dir: Path
) -> None:
    collector.collect(ctx)
    collector.collect(ctx)
    rewrite(proc_root / "diskstats", (edge_dir / "diskstats_malformed").read_bytes())
    sample = only(collector.collect(ctx))
    assert sample.disk == ()
    assert sample.errors == (f"{proc_root / 'diskstats'}:9: expected 14, 18 or 20 fields, got 17",)


def test_missing_file(collector: HostCollector, ctx: CollectContext, proc_root: Path) -> None:
    (proc_root / "vmstat").unlink()
    sample = only(collector.collect(ctx))
    assert sample.vmstat is None
    assert sample.mem is not None
    assert sample.load is not None
    (problem,) = ctx.problems
    assert type(problem) is CollectError
    assert problem.source == str(proc_root / "vmstat")
    assert sample.errors == (f"{proc_root / 'vmstat'}: cannot read: No such file or directory",)
    assert "vmstat" not in collector.unknown_keys


def test_a_file_that_appears_later_is_read(
    collector: HostCollector, ctx: CollectContext, proc_root: Path, fc_dir: Path
) -> None:
    (proc_root / "loadavg").unlink()
    assert only(collector.collect(ctx)).load is None
    shutil.copyfile(fc_dir / "loadavg", proc_root / "loadavg")
    assert only(collector.collect(ctx)).load == parse_loadavg((fc_dir / "loadavg").read_bytes())


def test_all_files_missing_raises(tmp_path: Path, ctx: CollectContext) -> None:
    collector = fixture_collector(tmp_path / "nowhere")
    with pytest.raises(CollectError, match="none of the 6 files could be read"):
        collector.collect(ctx)
    assert len(ctx.problems) == 6


def test_fast_path_equals_the_pure_parsers_as_files_change(
    collector: HostCollector, ctx: CollectContext, proc_root: Path, fc_dir: Path
) -> None:
    first = only(collector.collect(ctx))
    assert fields(first) == expected_sample(proc_root)
    for name in ("meminfo", "vmstat"):
        rewrite(proc_root / name, (fc_dir / f"{name}.after").read_bytes())
    second = only(collector.collect(ctx))
    assert fields(second) == expected_sample(proc_root)
    assert second.mem != first.mem
    assert second.vmstat != first.vmstat
    # Only the first read of each file went to the pure parser.
    assert collector.full_parses == dict.fromkeys(
        ("stat", "meminfo", "vmstat", "diskstats", "net/dev"), 1
    )


def test_a_key_added_falls_back(
    collector: HostCollector, ctx: CollectContext, proc_root: Path, fc_dir: Path
) -> None:
    collector.collect(ctx)
    meminfo = (fc_dir / "meminfo").read_bytes()
    rewrite(
        proc_root / "meminfo",
        meminfo.replace(b"KernelStack:", b"ShadowCallStack:     128 kB\nKernelStack:"),
    )
    sample = only(collector.collect(ctx))
    assert sample.mem == parse_meminfo(meminfo)
    assert sample.errors == ()
    assert collector.unknown_keys["meminfo"] == ("ShadowCallStack",)
    assert collector.full_parses["meminfo"] == 2
    assert fields(sample) == expected_sample(proc_root)


def test_a_growing_file_gets_a_larger_buffer(tmp_path: Path) -> None:
    path = tmp_path / "big"
    data = b"".join(b"cpu%d 1 2 3 4 5 6 7 8 9 10\n" % i for i in range(1000))
    path.write_bytes(data[:100])
    file = ProcFile(str(path))
    assert file.read() == data[:100]
    rewrite(path, data)
    assert file.read() == data
    file.close()


PAGE = 4096


def seq_file_reads(monkeypatch: pytest.MonkeyPatch, *, most: int = PAGE) -> list[int]:
    """Make ``os.pread`` read regular files as a kernel seq_file reads /proc.

    Each read returns whole lines that fit in a buffer of ``most`` bytes (the
    seq_file buffer is one page), so a read is short well before the end of a
    long file. Returns the sizes of the reads, as they happen.
    """
    real_pread = os.pread
    sizes: list[int] = []

    def pread(fd: int, size: int, offset: int) -> bytes:
        whole = real_pread(fd, 1 << 20, 0)
        chunk = b""
        for line in whole[offset:].splitlines(keepends=True):
            if chunk and (len(chunk) >= size or len(chunk) + len(line) >= most):
                break
            chunk += line
        sizes.append(len(chunk[:size]))
        return chunk[:size]

    monkeypatch.setattr(os, "pread", pread)
    return sizes


def counted_preads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the calls of ``os.pread``; returns the sizes they asked for."""
    real_pread = os.pread
    asked: list[int] = []

    def pread(fd: int, size: int, offset: int) -> bytes:
        asked.append(size)
        return real_pread(fd, size, offset)

    monkeypatch.setattr(os, "pread", pread)
    return asked


def net_dev_of(fc_dir: Path, count: int) -> bytes:
    """A net/dev of ``count`` interfaces, shaped as the recorded one."""
    lines = (fc_dir / "net_dev").read_bytes().splitlines(keepends=True)
    header, eth0 = lines[:2], lines[-1]
    name, counters = eth0.split(b":", 1)
    assert name.strip() == b"eth0"
    rows = [b"%6s:%s" % (b"veth%d" % i, counters) for i in range(count)]
    return b"".join(header + rows)


def test_net_dev_read_in_short_pages_is_whole(
    monkeypatch: pytest.MonkeyPatch, ctx: CollectContext, proc_root: Path, fc_dir: Path
) -> None:
    # 81 interfaces: about 10 KB, which the kernel gives one page at a time,
    # the first read short of a page (4,013 bytes of 10,163 on a real host).
    data = net_dev_of(fc_dir, 81)
    (proc_root / "net" / "dev").write_bytes(data)
    sizes = seq_file_reads(monkeypatch)
    collector = fixture_collector(proc_root)
    try:
        for _ in range(2):  # the first read, then one with the grown buffer
            sizes.clear()
            sample = only(collector.collect(ctx))
            assert sample.errors == ()
            assert [row.iface for row in sample.net] == [f"veth{i}" for i in range(81)]
            assert sample.net == parse_net_dev(data)
            assert PAGE - 200 < max(sizes) < PAGE  # short reads, yet not the end
    finally:
        collector.close()
    assert ctx.problems == []


def test_reads_cut_anywhere_give_the_whole_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "stat"
    data = b"".join(b"cpu%d 1 2 3 4 5 6 7 8 9 10\n" % i for i in range(1000))
    path.write_bytes(data)
    real_pread = os.pread
    monkeypatch.setattr(
        os, "pread", lambda fd, size, offset: real_pread(fd, min(size, 4000), offset)
    )
    file = ProcFile(str(path))
    assert file.read() == data
    assert file.read() == data
    file.close()


@pytest.mark.parametrize(
    ("length", "longest_record", "preads"),
    [
        (27, 1024, 1),  # loadavg: one short read is the end
        (3_000, 1024, 1),  # shorter than a page less the longest record
        (3_950, 1024, 2),  # maybe a page cut short: confirm with a pread of 0 bytes
        (3_950, 128, 1),  # vmstat: its short lines leave less room unused
        (10_000, 1024, 2),  # after the buffer has grown: one read, one to confirm
    ],
)
def test_preads_per_read(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, length: int, longest_record: int, preads: int
) -> None:
    path = tmp_path / "file"
    data = (b"x" * 39 + b"\n") * (length // 40) + b"y" * (length % 40)
    path.write_bytes(data)
    file = ProcFile(str(path), longest_record=longest_record)
    assert file.read() == data  # the first read grows the buffer if it must
    asked = counted_preads(monkeypatch)
    assert file.read() == data
    assert len(asked) == preads
    assert asked[0] > length
    file.close()


def test_a_descriptor_closed_behind_its_back_is_reopened(tmp_path: Path) -> None:
    path = tmp_path / "loadavg"
    path.write_bytes(b"0.00 0.01 0.05 1/99 123\n")
    file = ProcFile(str(path))
    file.read()
    os.close(file.fileno())
    assert file.read() == b"0.00 0.01 0.05 1/99 123\n"
    file.close()
    assert file.fileno() == -1


def test_unreadable_file_is_a_collect_error(tmp_path: Path) -> None:
    file = ProcFile(str(tmp_path / "gone"))
    with pytest.raises(CollectError, match="cannot read: No such file") as caught:
        file.read()
    assert caught.value.source == str(tmp_path / "gone")
    assert isinstance(caught.value.__cause__, OSError)
    file.close()


def test_a_directory_is_refused(tmp_path: Path) -> None:
    file = ProcFile(str(tmp_path))
    with pytest.raises(CollectError, match="not a regular file \\(a directory\\)") as caught:
        file.read()
    assert caught.value.source == str(tmp_path)
    assert file.fileno() == -1  # nothing left open


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="no /proc/stat: not a Linux host")
def test_live_proc() -> None:
    collector = HostCollector()
    ctx = CollectContext(host="live")
    try:
        first = only(collector.collect(ctx))
        second = only(collector.collect(ctx))
    finally:
        collector.close()
    assert ctx.problems == []
    assert first.errors == second.errors == ()
    assert first.cpu[0].cpu == -1
    assert len(first.cpu) == len(second.cpu) >= 2
    assert first.stat is not None
    assert second.stat is not None
    assert second.stat.ctxt_total >= first.stat.ctxt_total
    assert first.mem is not None
    assert first.mem[0]  # MemTotal
    assert first.vmstat is not None
    assert first.load is not None
    assert any(row.iface == "lo" for row in first.net)
