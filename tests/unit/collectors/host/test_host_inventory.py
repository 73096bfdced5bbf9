"""The host inventory: parsers on recorded files, the collector on a fixture tree."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from collectbus.collectors.base import CollectContext
from collectbus.collectors.host.inventory import (
    parse_cpuinfo,
    parse_mounts,
    parse_os_release,
    parse_osrelease,
    parse_partitions,
    parse_proc_version,
)
from collectbus.collectors.host.inventory_collector import InventoryCollector
from collectbus.errors import CollectError, ParseError

DATA = Path(__file__).resolve().parents[3] / "data"
INVENTORY = DATA / "inventory"
SYS = DATA / "sys" / "full"


def test_cpuinfo_of_the_recorded_host(fc_dir: Path) -> None:
    info = parse_cpuinfo((fc_dir / "cpuinfo").read_bytes())
    assert info == {
        "model": "AMD EPYC",
        "vendor": "AuthenticAMD",
        "sockets": 1,
        "cores": 2,
        "threads": 2,
        "flags_count": 105,
    }


def test_cpuinfo_without_topology() -> None:
    info = parse_cpuinfo((INVENTORY / "cpuinfo_arm64").read_bytes())
    assert info == {
        "model": None,
        "vendor": "0x41",
        "sockets": 1,
        "cores": 2,
        "threads": 2,
        "flags_count": 9,
    }
    with pytest.raises(ParseError, match="no 'processor' line"):
        parse_cpuinfo(b"")
    with pytest.raises(ParseError, match=":2: not a 'key : value' line"):
        parse_cpuinfo(b"processor : 0\nflags\n")


def test_kernel_release_from_version_partitions_and_osrelease(fc_dir: Path) -> None:
    assert parse_proc_version((fc_dir / "version").read_bytes()) == "6.18.44-fc-v669"
    assert parse_osrelease((INVENTORY / "osrelease").read_bytes()).startswith("6.18.44-fc-")
    assert parse_partitions((fc_dir / "partitions").read_bytes()) == [
        {"name": "vda", "major": 254, "minor": 0, "size_bytes": 268435456 * 1024}
    ]
    with pytest.raises(ParseError, match="expected one kernel release"):
        parse_osrelease(b"6.1 extra\n")
    with pytest.raises(ParseError, match="Linux version"):
        parse_proc_version(b"BSD 14\n")
    with pytest.raises(ParseError, match="header"):
        parse_partitions(b"major minor\n")


def test_os_release() -> None:
    info = parse_os_release((INVENTORY / "os-release").read_bytes())
    assert info["id"] == "debian"
    assert info["version_id"] == "12"
    assert info["pretty_name"] == "Debian GNU/Linux 12 (bookworm)"
    with pytest.raises(ParseError, match=":1: NAME: bad quoting"):
        parse_os_release((INVENTORY / "os-release_malformed").read_bytes())


def test_mounts_real_filesystems_only() -> None:
    mounts = parse_mounts((INVENTORY / "mounts").read_bytes())
    assert {m["fstype"] for m in mounts} <= {"ext4", "overlay", "xfs", "btrfs"}
    assert {"device": "/dev/vda", "mountpoint": "/", "fstype": "ext4", "read_only": False} in mounts
    escaped = parse_mounts((INVENTORY / "mounts_escaped").read_bytes())
    assert escaped == [
        {"device": "/dev/sdb1", "mountpoint": "/mnt/my disk", "fstype": "xfs", "read_only": True},
        {"device": "server:/export", "mountpoint": "/data", "fstype": "nfs4", "read_only": False},
    ]
    with pytest.raises(ParseError, match=":1: expected 6 fields"):
        parse_mounts(b"/dev/sda1 / ext4\n")


@pytest.fixture
def trees(tmp_path: Path, fc_dir: Path) -> tuple[Path, Path]:
    proc = tmp_path / "proc"
    (proc / "sys" / "kernel").mkdir(parents=True)
    (proc / "self").mkdir()
    shutil.copyfile(fc_dir / "cpuinfo", proc / "cpuinfo")
    shutil.copyfile(INVENTORY / "osrelease", proc / "sys" / "kernel" / "osrelease")
    shutil.copyfile(INVENTORY / "mounts", proc / "self" / "mounts")
    sys_root = tmp_path / "sys"
    shutil.copytree(SYS, sys_root)
    return proc, sys_root


def _collect(
    proc: Path, sys_root: Path
) -> tuple[dict[str, object], tuple[str, ...], list[CollectError]]:
    collector = InventoryCollector(
        proc, sys_root=sys_root, os_release=(str(INVENTORY / "os-release"),)
    )
    ctx = CollectContext(host="n1")
    [inventory] = collector.collect(ctx)
    assert inventory.host == "n1"
    return json.loads(inventory.document), inventory.errors, ctx.problems


def test_inventory_document(trees: tuple[Path, Path]) -> None:
    document, errors, problems = _collect(*trees)
    assert errors == ()
    assert problems == []
    assert set(document) == {"cpu", "os", "kernel", "disks", "nics", "mounts"}
    assert document["cpu"]["threads"] == 2  # type: ignore[index]
    assert document["disks"] == [
        {"name": "loop0", "size_bytes": 0, "rotational": False, "removable": False},
        {"name": "sda", "size_bytes": 1953525168 * 512, "rotational": True, "removable": False},
        {"name": "vda", "size_bytes": 536870912 * 512, "rotational": False, "removable": False},
    ]
    assert document["nics"] == [
        {
            "name": "eth0",
            "speed_mbps": 1000,
            "operstate": "up",
            "mtu": 1500,
            "address": "52:54:00:12:34:56",
        },
        {
            "name": "lo",
            "speed_mbps": None,
            "operstate": "unknown",
            "mtu": 65536,
            "address": "00:00:00:00:00:00",
        },
        {
            "name": "wlan0",
            "speed_mbps": None,
            "operstate": "down",
            "mtu": 1500,
            "address": "3c:a9:f4:00:00:01",
        },
    ]


def test_a_malformed_sys_file_is_one_error_and_the_rest_is_kept(trees: tuple[Path, Path]) -> None:
    proc, sys_root = trees
    (sys_root / "block" / "sda" / "size").write_bytes(b"lots\n")
    (sys_root / "class" / "net" / "wlan0" / "speed").unlink()
    (sys_root / "class" / "net" / "wlan0" / "speed").mkdir()  # read fails: EISDIR
    (proc / "cpuinfo").unlink()
    document, errors, problems = _collect(proc, sys_root)
    assert errors == (
        f"{proc / 'cpuinfo'}: cannot read: No such file or directory",
        f"{sys_root / 'block' / 'sda' / 'size'}:1: not an integer: b'lots\\n'",
        f"{sys_root / 'class' / 'net' / 'wlan0' / 'speed'}: not a regular file (a directory); not read",
    )
    assert len(problems) == 3
    assert "cpu" not in document
    assert [d["name"] for d in document["disks"]] == ["loop0", "vda"]  # type: ignore[attr-defined]
    assert [n["name"] for n in document["nics"]] == ["eth0", "lo"]  # type: ignore[attr-defined]
    assert document["kernel"]["release"].startswith("6.18")  # type: ignore[index]


def test_nothing_readable_raises(tmp_path: Path) -> None:
    collector = InventoryCollector(tmp_path, sys_root=tmp_path, os_release=(str(tmp_path / "x"),))
    with pytest.raises(CollectError, match="no part of the inventory could be read"):
        collector.collect(CollectContext(host="n1"))


@pytest.mark.skipif(not Path("/proc/cpuinfo").exists(), reason="needs a Linux /proc")
def test_live_inventory() -> None:
    ctx = CollectContext(host="live")
    [inventory] = InventoryCollector().collect(ctx)
    document = json.loads(inventory.document)
    assert document["cpu"]["threads"] >= 1
    assert document["kernel"]["release"]
    assert any(n["name"] == "lo" for n in document["nics"])
