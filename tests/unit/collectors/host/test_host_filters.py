"""Disk and interface filters: node_exporter's defaults, partitions by sysfs, patterns, the cap."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
from tests.unit.collectors.host.conftest import fixture_collector

from collectbus.collectors.base import CollectContext
from collectbus.collectors.host.filters import DeviceFilter, FilterConfig, is_partition
from collectbus.collectors.host.parse import parse_diskstats, parse_net_dev

SYS = Path(__file__).resolve().parents[3] / "data" / "sys" / "full"


@pytest.fixture
def tree(proc_root: Path, edge_dir: Path) -> Path:
    shutil.copyfile(edge_dir / "diskstats_filters", proc_root / "diskstats")
    shutil.copyfile(edge_dir / "net_dev_aliases", proc_root / "net" / "dev")
    return proc_root


def _collect(proc_root: Path, config: FilterConfig, reads: int = 3) -> list[list[str]]:
    collector = fixture_collector(proc_root, filters=config, sys_root=str(SYS))
    names = []
    try:
        for _ in range(reads):
            [sample] = collector.collect(CollectContext(host="h"))
            assert sample.errors == ()
            names.append([row.device for row in sample.disk])
            names.append([row.iface for row in sample.net])
        assert collector.full_parses["diskstats"] == 1  # later reads take the fast path
    finally:
        collector.close()
    return names


def test_partition_flag_comes_from_sysfs() -> None:
    assert is_partition(str(SYS), 8, 1)
    assert is_partition(str(SYS), 259, 1)
    assert not is_partition(str(SYS), 8, 0)
    assert not is_partition(str(SYS), 254, 0)
    assert not is_partition(str(SYS / "nowhere"), 8, 1)  # no sysfs: nothing is a partition


def test_defaults_leave_out_loop_ram_zram_and_partitions(tree: Path, edge_dir: Path) -> None:
    names = _collect(tree, FilterConfig())
    disks, ifaces = names[0], names[1]
    # dm-0 is kept (as node_exporter does); the sums of the analysis leave it out.
    assert disks == ["sda", "dm-0", "vda", "nvme0n1"]
    assert ifaces == [
        row.iface for row in parse_net_dev((edge_dir / "net_dev_aliases").read_bytes())
    ]
    assert all(n == names[i % 2] for i, n in enumerate(names))


def test_the_fast_path_equals_the_pure_parser_filtered(tree: Path, edge_dir: Path) -> None:
    rows = parse_diskstats((edge_dir / "diskstats_filters").read_bytes())
    keep = {"sda", "vda"}
    collector = fixture_collector(
        tree, filters=FilterConfig(disk_include=("^[sv]da$",)), sys_root=str(SYS)
    )
    try:
        samples = [collector.collect(CollectContext(host="h"))[0] for _ in range(3)]
    finally:
        collector.close()
    expected = tuple(row for row in rows if row.device in keep)
    assert all(s.disk == expected for s in samples)


def test_include_and_exclude_patterns(tree: Path) -> None:
    config = FilterConfig(
        disk_exclude=(r"^dm-", r"^(loop|zram)\d+$"),
        disk_partitions=True,
        net_include=(r"^(eth|team)",),
        net_exclude=(r":\d+$",),
    )
    disks, ifaces = _collect(tree, config, reads=1)
    assert disks == ["sda", "sda1", "vda", "nvme0n1", "nvme0n1p1"]
    assert ifaces == ["eth0"]


def test_the_cap_keeps_the_first_devices_counts_and_warns_once(
    tree: Path, caplog: pytest.LogCaptureFixture
) -> None:
    collector = fixture_collector(
        tree, filters=FilterConfig(disk_exclude=(), max_devices=2), sys_root=str(SYS)
    )
    caplog.set_level(logging.WARNING, "collectbus.collectors.host")
    try:
        for _ in range(3):
            [sample] = collector.collect(CollectContext(host="h"))
            assert [row.device for row in sample.disk] == ["sda", "loop0"]
    finally:
        collector.close()
    assert collector.filter.capped["disk"] == 8 - 2 - 2  # sda1 and nvme0n1p1 are partitions
    warnings = [r for r in caplog.records if "disk devices, more than" in r.getMessage()]
    assert len(warnings) == 1
    assert "4 past it are not collected" in warnings[0].getMessage()


def test_filter_without_sysfs_decides_by_pattern_only() -> None:
    chooser = DeviceFilter(FilterConfig(), "/nonexistent-sys")
    assert chooser.keep_disk("sda1", 8, 1)
    assert not chooser.keep_disk("loop3", 7, 3)
    assert not chooser.keep_disk("zram0", 252, 0)
    assert not chooser.keep_disk("ram0", 1, 0)
    assert chooser.keep_net("lo")


def test_a_device_plugged_in_is_filtered_like_the_others(edge_dir: Path) -> None:
    from collectbus.collectors.host.layouts import DiskstatsParser
    from collectbus.records import DiskRow

    def select(rows: tuple[DiskRow, ...]) -> list[int]:
        return [i for i, row in enumerate(rows) if not row.device.startswith(("loop", "zram"))]

    data = (edge_dir / "diskstats_filters").read_bytes()
    parser = DiskstatsParser("diskstats", select)
    plugged = data + b"   7       1 loop1 1 0 8 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
    plugged += b"   8      16 sdb 5 0 40 1 0 0 0 0 0 1 1 0 0 0 0 0 0\n"
    for version in (data, data, plugged, plugged, data):
        expected = tuple(
            r for r in parse_diskstats(version) if r.device[:4] not in ("loop", "zram")
        )
        assert parser.parse(version) == expected
    assert parser.full_parses == 3  # the first read and each change of layout
