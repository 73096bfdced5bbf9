"""Which disks and interfaces the host collector keeps.

The defaults follow node_exporter's: its diskstats collector leaves out
``^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\\d+n\\d+p)\\d+$``, that is RAM and loop
devices and partitions. Here a partition is recognised the way the kernel says
it, not by its name: ``/sys/dev/block/MAJ:MIN/partition`` exists for a
partition only (``Documentation/ABI/testing/sysfs-block``). Interfaces are all
kept, ``lo`` included; the analysis leaves ``lo`` out of its sums.

A device is tested once, when it first appears, and the answer is cached, so
the filter costs nothing on later samples. A cap on the number of devices
kept guards the tables against a host with thousands of them (containers
creating veth pairs): the devices past the cap are dropped, counted, and a
warning is logged once.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = [
    "DEFAULT_DISK_EXCLUDE",
    "DEFAULT_MAX_DEVICES",
    "DeviceFilter",
    "FilterConfig",
    "is_partition",
]

log = logging.getLogger("collectbus.collectors.host")

DEFAULT_DISK_EXCLUDE = (r"^(z?ram|loop|fd)\d+$",)
DEFAULT_MAX_DEVICES = 512


def is_partition(sys_root: str, major: int | None, minor: int | None) -> bool:
    """True when ``MAJ:MIN`` is a partition (its sysfs directory has a ``partition`` file).

    A device number out of range (None) names no sysfs directory: not a partition.
    """
    if major is None or minor is None:
        return False
    return os.path.exists(os.path.join(sys_root, "dev", "block", f"{major}:{minor}", "partition"))


@dataclass(frozen=True, slots=True)
class FilterConfig:
    """Patterns (regular expressions, searched) and the cap, as configured."""

    disk_include: Sequence[str] = ()
    disk_exclude: Sequence[str] = DEFAULT_DISK_EXCLUDE
    disk_partitions: bool = False
    net_include: Sequence[str] = ()
    net_exclude: Sequence[str] = ()
    max_devices: int = DEFAULT_MAX_DEVICES


def _compiled(patterns: Sequence[str]) -> re.Pattern[str] | None:
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{p})" for p in patterns))


@dataclass(slots=True)
class DeviceFilter:
    """Decides, once per device, whether the collector keeps it."""

    config: FilterConfig = field(default_factory=FilterConfig)
    sys_root: str = "/sys"
    #: Devices left out because of the cap, per kind (``disk``, ``net``).
    capped: dict[str, int] = field(default_factory=lambda: {"disk": 0, "net": 0})
    _disk_in: re.Pattern[str] | None = None
    _disk_out: re.Pattern[str] | None = None
    _net_in: re.Pattern[str] | None = None
    _net_out: re.Pattern[str] | None = None
    _warned: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._disk_in = _compiled(self.config.disk_include)
        self._disk_out = _compiled(self.config.disk_exclude)
        self._net_in = _compiled(self.config.net_include)
        self._net_out = _compiled(self.config.net_exclude)

    def keep_disk(self, name: str, major: int | None, minor: int | None) -> bool:
        if self._disk_in is not None and not self._disk_in.search(name):
            return False
        if self._disk_out is not None and self._disk_out.search(name):
            return False
        return self.config.disk_partitions or not is_partition(self.sys_root, major, minor)

    def keep_net(self, name: str) -> bool:
        if self._net_in is not None and not self._net_in.search(name):
            return False
        return self._net_out is None or not self._net_out.search(name)

    def cap(self, kind: str, kept: list[int]) -> list[int]:
        """The first ``max_devices`` of ``kept``; the rest counted, warned of once."""
        limit = self.config.max_devices
        if len(kept) <= limit:
            self.capped[kind] = 0
            return kept
        self.capped[kind] = len(kept) - limit
        if kind not in self._warned:
            self._warned.add(kind)
            log.warning(
                "host: %d %s devices, more than max_devices = %d; the %d past it are not collected",
                len(kept),
                kind,
                limit,
                len(kept) - limit,
            )
        return kept[:limit]
