"""The pure /proc parsers against the psutil oracle and the edge-case fixtures."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from collectbus.collectors.host.parse import (
    parse_diskstats,
    parse_loadavg,
    parse_meminfo,
    parse_meminfo_detail,
    parse_net_dev,
    parse_stat,
    parse_vmstat,
    parse_vmstat_detail,
)
from collectbus.errors import CollectError, ParseError
from collectbus.procfields import MEMINFO_COLUMNS, MEMINFO_KEYS, VMSTAT_COLUMNS
from collectbus.records import CpuRow, DiskRow, NetRow

# The oracle's conversions (its README): USER_HZ and the page size of that VM.
CLK_TCK = 100
PAGE_SIZE = 4096
SECTOR = 512
CPU_FIELDS = CpuRow._fields[1:]


@pytest.fixture
def oracle(fc_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((fc_dir / "psutil_oracle.json").read_text())
    assert data["meta"]["SC_CLK_TCK"] == CLK_TCK
    assert data["meta"]["page_size"] == PAGE_SIZE
    psutil: dict[str, Any] = data["psutil"]
    return psutil


def read(directory: Path, name: str) -> bytes:
    return (directory / name).read_bytes()


def mem(values: tuple[int | None, ...], key: str) -> int:
    value = values[MEMINFO_COLUMNS.index(dict(MEMINFO_KEYS)[key])]
    assert value is not None
    return value


def vm(values: tuple[int | None, ...], key: str) -> int:
    value = values[VMSTAT_COLUMNS.index(key)]
    assert value is not None
    return value


def between(value: float, first: float, second: float) -> bool:
    return min(first, second) <= value <= max(first, second)


# ------------------------------------------------------ against the oracle


def test_stat_cpu_times_match_psutil(fc_dir: Path, oracle: dict[str, Any]) -> None:
    cpus, _ = parse_stat(read(fc_dir, "stat"))
    assert [row.cpu for row in cpus] == [-1, 0, 1]
    assert len(cpus) - 1 == oracle["cpu_count_logical"]
    expected = [oracle["cpu_times_total"], *oracle["cpu_times_percpu"]]
    for row, times in zip(cpus, expected, strict=True):
        assert {f: getattr(row, f) / CLK_TCK for f in CPU_FIELDS} == times


def test_stat_totals_match_psutil(fc_dir: Path, oracle: dict[str, Any]) -> None:
    _, stat = parse_stat(read(fc_dir, "stat"))
    assert stat.ctxt_total == oracle["cpu_stats"]["ctx_switches"]
    assert stat.intr_total == oracle["cpu_stats"]["interrupts"]
    assert stat.softirq_total == oracle["cpu_stats"]["soft_interrupts"]
    assert stat.boot_time_s == oracle["boot_time"]
    assert (stat.forks_total, stat.procs_running, stat.procs_blocked) == (7564, 2, 0)


def test_meminfo_matches_psutil_virtual_memory(fc_dir: Path, oracle: dict[str, Any]) -> None:
    # meminfo changed while psutil ran: its values lie between FILE and FILE.after.
    before = parse_meminfo(read(fc_dir, "meminfo"))
    after = parse_meminfo(read(fc_dir, "meminfo.after"))
    vmem = oracle["virtual_memory"]
    derived: dict[str, Callable[[tuple[int | None, ...]], int]] = {
        "total": lambda v: mem(v, "MemTotal"),
        "available": lambda v: mem(v, "MemAvailable"),
        "free": lambda v: mem(v, "MemFree"),
        "buffers": lambda v: mem(v, "Buffers"),
        # psutil counts reclaimable slab as cache.
        "cached": lambda v: mem(v, "Cached") + mem(v, "SReclaimable"),
        "active": lambda v: mem(v, "Active"),
        "inactive": lambda v: mem(v, "Inactive"),
        "shared": lambda v: mem(v, "Shmem"),
        "slab": lambda v: mem(v, "Slab"),
        "used": lambda v: mem(v, "MemTotal") - mem(v, "MemAvailable"),
    }
    for name, value_of in derived.items():
        assert between(vmem[name], value_of(before), value_of(after)), name


def test_meminfo_and_vmstat_match_psutil_swap(fc_dir: Path, oracle: dict[str, Any]) -> None:
    swap = oracle["swap_memory"]
    meminfo = parse_meminfo(read(fc_dir, "meminfo"))
    assert swap["total"] == mem(meminfo, "SwapTotal")
    assert swap["free"] == mem(meminfo, "SwapFree")
    before = parse_vmstat(read(fc_dir, "vmstat"))
    after = parse_vmstat(read(fc_dir, "vmstat.after"))
    for name, key in (("sin", "pswpin"), ("sout", "pswpout")):
        assert between(swap[name], vm(before, key) * PAGE_SIZE, vm(after, key) * PAGE_SIZE)


def test_diskstats_match_psutil(fc_dir: Path, oracle: dict[str, Any]) -> None:
    rows = parse_diskstats(read(fc_dir, "diskstats"))
    expected = oracle["disk_io_counters_perdisk"]
    assert [row.device for row in rows] == list(expected)
    for row in rows:
        assert expected[row.device] == {
            "read_count": row.read_ios,
            "write_count": row.write_ios,
            "read_bytes": row.read_sectors * SECTOR,
            "write_bytes": row.write_sectors * SECTOR,
            "read_time": row.read_ticks_ms,
            "write_time": row.write_ticks_ms,
            "read_merged_count": row.read_merges,
            "write_merged_count": row.write_merges,
            "busy_time": row.io_ticks_ms,
        }
    vda = rows[-2]
    assert (vda.discard_ios, vda.discard_ticks_ms, vda.flush_ios, vda.flush_ticks_ms) == (
        3369,
        425,
        1328,
        52,
    )


def test_net_dev_matches_psutil(fc_dir: Path, oracle: dict[str, Any]) -> None:
    rows = parse_net_dev(read(fc_dir, "net_dev"))
    expected = oracle["net_io_counters_pernic"]
    assert [row.iface for row in rows] == list(expected)
    for row in rows:
        assert expected[row.iface] == {
            "bytes_sent": row.tx_bytes,
            "bytes_recv": row.rx_bytes,
            "packets_sent": row.tx_packets,
            "packets_recv": row.rx_packets,
            "errin": row.rx_errs,
            "errout": row.tx_errs,
            "dropin": row.rx_drop,
            "dropout": row.tx_drop,
        }


def test_loadavg_matches_psutil(fc_dir: Path, oracle: dict[str, Any]) -> None:
    load = parse_loadavg(read(fc_dir, "loadavg"))
    assert (load.load1, load.load5, load.load15) == (1.13, 0.40, 0.14)
    assert (load.procs_running, load.procs_total, load.last_pid) == (2, 104, 7563)
    # psutil.getloadavg() goes through sysinfo(2): equal to about 1/200.
    assert [load.load1, load.load5, load.load15] == pytest.approx(oracle["getloadavg"], abs=0.005)


def test_meminfo_units(fc_dir: Path) -> None:
    values = parse_meminfo(read(fc_dir, "meminfo"))
    assert len(values) == len(MEMINFO_KEYS)
    assert mem(values, "MemTotal") == 24684084 * 1024
    assert mem(values, "Hugepagesize") == 2048 * 1024
    assert mem(values, "HugePages_Total") == 0  # a count, no unit
    # Keys Linux 6.18 prints only with some config options.
    assert values[MEMINFO_COLUMNS.index("cma_total_bytes")] is None


def test_vmstat_columns_are_the_6_18_keys(fc_dir: Path) -> None:
    detail = parse_vmstat_detail(read(fc_dir, "vmstat"))
    assert len(detail.values) == len(VMSTAT_COLUMNS)
    assert detail.unknown_keys == ()
    assert None not in detail.values
    assert vm(detail.values, "pgfault") == 1740487


# ---------------------------------------------------------- edge cases


@pytest.mark.parametrize(
    ("name", "discard", "flush"),
    [
        ("diskstats_14", (None, None, None, None), (None, None)),
        ("diskstats_18", (12, 0, 4096, 7), (None, None)),
        ("diskstats_20", (12, 0, 4096, 7), (1328, 52)),
    ],
)
def test_diskstats_widths(
    edge_dir: Path,
    name: str,
    discard: tuple[int | None, ...],
    flush: tuple[int | None, ...],
) -> None:
    sda = parse_diskstats(read(edge_dir, name))[0]
    assert (sda.device, sda.major, sda.minor) == ("sda", 8, 0)
    assert (sda.read_ios, sda.read_sectors, sda.write_sectors) == (446216, 9550688, 5922052)
    assert (sda.in_flight, sda.io_ticks_ms, sda.time_in_queue_ms) == (0, 3376340, 23705160)
    assert sda[-6:-2] == discard
    assert sda[-2:] == flush


def test_diskstats_2_6_partition_lines(edge_dir: Path) -> None:
    rows = parse_diskstats(read(edge_dir, "diskstats_2_6_mixed"))
    assert [row.device for row in rows] == ["sda", "sda1", "sda2", "sda3"]
    assert rows[1] == DiskRow(
        "sda1", 8, 1, 35486, 0, 38030, 0, 38030, 0, 38030, 0, 0, 0, 0,
        None, None, None, None, None, None,
    )  # fmt: skip
    assert rows[2].read_merges == 746896  # a 14-field line in the same file


def test_net_dev_name_ends_at_the_last_colon(edge_dir: Path) -> None:
    rows = parse_net_dev(read(edge_dir, "net_dev_aliases"))
    assert [row.iface for row in rows] == ["lo", "eth0", "team0:1"]
    eth0 = rows[1]
    assert (eth0.rx_bytes, eth0.rx_packets, eth0.rx_drop, eth0.rx_multicast) == (
        5019464820,
        4512345,
        2,
        1234,
    )
    assert rows[2] == NetRow("team0:1", 1000, 10, 0, 0, 0, 0, 0, 0, 2000, 20, 0, 0, 0, 0, 0, 0)


def test_stat_offline_cpu_gap(edge_dir: Path) -> None:
    cpus, stat = parse_stat(read(edge_dir, "stat_offline_cpu"))
    assert [row.cpu for row in cpus] == [-1, 0, 2]
    assert cpus[2] == CpuRow(2, 6, 12, 18, 24, 30, 36, 42, 48, 0, 0)
    assert stat.softirq_total == 4321


def test_stat_older_kernels_fill_missing_columns_with_0(edge_dir: Path) -> None:
    cpus, stat = parse_stat(read(edge_dir, "stat_2_6_18"))
    assert cpus[0] == CpuRow(-1, 79035, 1146, 29480, 8012290, 21390, 1287, 4513, 0, 0, 0)
    assert stat.softirq_total == 0  # no softirq line before 2.6.31
    assert stat.intr_total == 44215061
    cpus, _ = parse_stat(read(edge_dir, "stat_4_columns"))
    assert cpus[1] == CpuRow(0, 4021, 59, 1516, 400387, 0, 0, 0, 0, 0, 0)


def test_meminfo_without_memavailable(edge_dir: Path) -> None:
    detail = parse_meminfo_detail(read(edge_dir, "meminfo_3_10"))
    values = detail.values
    assert values[MEMINFO_COLUMNS.index("mem_available_bytes")] is None
    assert mem(values, "MemTotal") == 8010456 * 1024
    assert mem(values, "VmallocChunk") == 34359310332 * 1024
    assert detail.unknown_keys == ()


def test_unknown_keys_are_counted_not_stored(fc_dir: Path) -> None:
    data = read(fc_dir, "meminfo").replace(
        b"KernelStack:", b"ShadowCallStack:     128 kB\nKernelStack:"
    )
    detail = parse_meminfo_detail(data)
    assert detail.unknown_keys == ("ShadowCallStack",)
    assert detail.values == parse_meminfo(read(fc_dir, "meminfo"))
    vmstat = parse_vmstat_detail(read(fc_dir, "vmstat") + b"nr_future_pages 7\n")
    assert vmstat.unknown_keys == ("nr_future_pages",)


# ---------------------------------------------------------- malformed


@pytest.mark.parametrize(
    ("name", "parser", "line"),
    [
        ("stat_malformed", parse_stat, 3),
        ("meminfo_malformed", parse_meminfo, 5),
        ("vmstat_malformed", parse_vmstat, 4),
        ("diskstats_malformed", parse_diskstats, 9),
        ("net_dev_malformed", parse_net_dev, 6),
        ("loadavg_malformed", parse_loadavg, 1),
    ],
)
def test_malformed_fixture_names_the_line(
    edge_dir: Path, name: str, parser: Any, line: int
) -> None:
    with pytest.raises(ParseError) as caught:
        parser(read(edge_dir, name), "/proc/" + name.removesuffix("_malformed"))
    assert caught.value.line == line
    assert str(caught.value).startswith(f"/proc/{name.removesuffix('_malformed')}:{line}: ")
    assert isinstance(caught.value, CollectError)


@pytest.mark.parametrize(
    ("parser", "data", "line"),
    [
        (parse_stat, b"cpu  1 2 3 4\ncpuX 1 2 3 4\n", 2),
        (parse_stat, b"cpu  1 2 3\n", 1),
        (parse_stat, b"cpu  1 2 3 4\ncpu0 1 2 3 4\ncpu0 1 2 3 4\n", 3),
        (parse_stat, b"cpu  1 2 3 4\n\nctxt 1\n", 2),
        (parse_stat, b"cpu  1 2 3 4\nctxt 1 2\n", 2),
        (parse_stat, b"cpu  1 2 3 4\nintr\n", 2),
        (parse_stat, b"cpu  1 2 3 4\nintr x 1\n", 2),
        (parse_stat, b"cpu  1 2 3 4\nctxt 1\nctxt 2\n", 3),
        (parse_stat, b"cpu0 1 2 3 4\nintr 1\nctxt 1\nbtime 1\nprocesses 1\n", None),
        (parse_meminfo, b"MemTotal: 1 kB\nMemFree: x kB\n", 2),
        (parse_meminfo, b"MemTotal: 1 MB\n", 1),
        (parse_meminfo, b"MemTotal: 1\n", 1),
        (parse_meminfo, b"HugePages_Total: 1 kB\n", 1),
        (parse_meminfo, b"MemTotal: 1 kB\nMemTotal: 1 kB\n", 2),
        (parse_meminfo, b"MemTotal:\n", 1),
        (parse_meminfo, b"Mem Total: 1 kB\n", 1),
        (parse_meminfo, b"MemTotal: 1 kB\n\n", 2),
        (parse_vmstat, b"pgfault 1\npgfault 2\n", 2),
        (parse_vmstat, b"pgfault 1 2\n", 1),
        (parse_vmstat, b"pgfault 1\npgmajfault -\n", 2),
        (parse_diskstats, b"   8 0 sda 1 2 3\n", 1),
        (parse_diskstats, b"   8 0 sda" + b" 0" * 10 + b" x\n", 1),
        (parse_diskstats, b"   8 0 sda" + b" 0" * 11 + b"\n   8 1 sda1 1 2 3 x\n", 2),
        (parse_net_dev, b"Inter-|\n", 2),
        (parse_net_dev, b"Inter-|\n face |\n  eth0 1 2\n", 3),
        (parse_net_dev, b"Inter-|\n face |\n  :" + b" 0" * 16 + b"\n", 3),
        (parse_net_dev, b"Inter-|\n face |\n  a b:" + b" 0" * 16 + b"\n", 3),
        (parse_net_dev, b"Inter-|\n face |\n  eth0:" + b" 0" * 15 + b" x\n", 3),
        (parse_loadavg, b"1.13 0.40 0.14 2/104\n", 1),
        (parse_loadavg, b"1.13 0.40 x 2/104 7563\n", 1),
        (parse_loadavg, b"1.13 0.40 0.14 2-104 7563\n", 1),
        (parse_loadavg, b"1.13 0.40 0.14 2/104 7563\n1\n", 1),
        (parse_loadavg, b"", 1),
    ],
)
def test_malformed_content_raises_with_the_line(parser: Any, data: bytes, line: int | None) -> None:
    with pytest.raises(ParseError) as caught:
        parser(data, "src")
    assert caught.value.line == line
    assert caught.value.source == "src"


def test_stat_requires_its_system_lines() -> None:
    with pytest.raises(ParseError, match="no 'btime' line"):
        parse_stat(b"cpu  1 2 3 4\nintr 1\nctxt 1\nprocesses 1\nprocs_running 1\nprocs_blocked 0\n")


def test_names_that_are_not_utf8_survive() -> None:
    rows = parse_diskstats(b"   8 0 sd\xff" + b" 0" * 11 + b"\n")
    assert rows[0].device == "sd\\xff"


def test_empty_files() -> None:
    assert parse_diskstats(b"") == ()
    assert parse_meminfo(b"") == (None,) * len(MEMINFO_KEYS)
    assert parse_net_dev(b"Inter-|\n face |\n") == ()
