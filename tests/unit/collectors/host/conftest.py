"""Fixtures for the host collector tests: the recorded procfs files and a procfs tree."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from collectbus.collectors.host.collector import HostCollector
from collectbus.collectors.host.filters import FilterConfig

PROCFS_DATA = Path(__file__).resolve().parents[3] / "data" / "procfs"

# The files a host sample reads, as (path under the procfs root, fixture name).
TREE_FILES = (
    ("stat", "stat"),
    ("meminfo", "meminfo"),
    ("vmstat", "vmstat"),
    ("diskstats", "diskstats"),
    ("net/dev", "net_dev"),
    ("loadavg", "loadavg"),
)


@pytest.fixture
def data_dir() -> Path:
    """tests/data/procfs."""
    return PROCFS_DATA


@pytest.fixture
def fc_dir(data_dir: Path) -> Path:
    """The recorded 2-vCPU Firecracker snapshot, kernel 6.18, with its psutil oracle."""
    return data_dir / "fc-6.18-2cpu"


@pytest.fixture
def edge_dir(data_dir: Path) -> Path:
    """Hand-written edge cases; see their README.md."""
    return data_dir / "edge"


@pytest.fixture
def proc_root(tmp_path: Path, fc_dir: Path) -> Path:
    """A procfs tree built from the recorded snapshot (net_dev becomes net/dev)."""
    root = tmp_path / "proc"
    (root / "net").mkdir(parents=True)
    for relative, fixture in TREE_FILES:
        shutil.copyfile(fc_dir / fixture, root / relative)
    return root


#: Keeps every disk and interface: the filters have tests of their own.
KEEP_ALL = FilterConfig(disk_exclude=(), disk_partitions=True)


def fixture_collector(proc_root: Path | str, **kwargs: object) -> HostCollector:
    """A collector on a fixture tree: no filter, no cgroup, no live /sys."""
    options: dict[str, object] = {
        "filters": KEEP_ALL,
        "cgroup": "off",
        "sys_root": str(Path(proc_root).parent / "sys"),
    }
    options.update(kwargs)
    return HostCollector(proc_root, **options)  # type: ignore[arg-type]
