"""Test doubles for collectbus users and for collectbus's own tests.

:func:`make_host_sample` builds a realistic :class:`~collectbus.records.HostSample`
without reading /proc. Counters grow at fixed per-second rates from the boot
time, so two samples of the same host give known rates; gauges wander
deterministically. The same arguments always give the same sample.
"""

from __future__ import annotations

import random

from collectbus.clock import NS_PER_S
from collectbus.procfields import MEMINFO_COLUMNS, VMSTAT_COLUMNS
from collectbus.records import (
    CgroupRow,
    CpuRow,
    DiskRow,
    HostSample,
    LoadRow,
    NetRow,
    PsiRow,
    StatRow,
    UptimeRow,
)

#: The default boot time of every fake host: 2020-09-13 12:26:40 UTC.
BOOT_TIME_S = 1_600_000_000
#: meminfo and vmstat keys this fake kernel does not have (stored as NULL).
ABSENT_MEMINFO = frozenset({"unaccepted_bytes", "balloon_bytes"})
ABSENT_VMSTAT = frozenset({"nr_unstable", "nr_iommu_pages"})
#: Per-second rates of the fake counters: sectors read and written per disk,
#: bytes received and sent per interface, USER_HZ ticks per CPU.
DISK_READ_SECTORS_PER_S = 2_000
DISK_WRITE_SECTORS_PER_S = 5_000
NET_RX_BYTES_PER_S = 125_000
NET_TX_BYTES_PER_S = 50_000
CPU_TICKS_PER_S = 100  # USER_HZ; split 30 user, 10 system, 55 idle, 5 iowait


def _counter(rate_per_s: int, elapsed_ns: int, base: int = 0) -> int:
    return base + rate_per_s * elapsed_ns // NS_PER_S


def _disk(name: str, index: int, up: int, base: int, in_flight: int) -> DiskRow:
    ios = _counter(10 * (index + 1), up, base)
    reads = (ios, ios // 4, _counter(DISK_READ_SECTORS_PER_S, up, base), _counter(7, up))
    writes = (2 * ios, ios // 2, _counter(DISK_WRITE_SECTORS_PER_S, up, base), _counter(9, up))
    busy = (in_flight, _counter(300, up), _counter(400, up))
    return DiskRow(name, 8, 16 * index, *reads, *writes, *busy, 0, 0, 0, 0, ios // 8, 0)


def _net(name: str, up: int, base: int) -> NetRow:
    rx = (_counter(NET_RX_BYTES_PER_S, up, base), _counter(100, up), 0, 0, 0, 0, 0, 0)
    tx = (_counter(NET_TX_BYTES_PER_S, up, base), _counter(60, up), 0, 0, 0, 0, 0, 0)
    return NetRow(name, *rx, *tx)


def make_host_sample(
    host: str,
    time_ns: int,
    *,
    seed: int = 0,
    cpus: int = 2,
    disks: tuple[str, ...] = ("sda", "sda1", "nvme0n1", "loop0"),
    ifaces: tuple[str, ...] = ("lo", "eth0"),
    boot_time_s: int | None = None,
    psi: bool = False,
    cgroup: bool = False,
) -> HostSample:
    """A full sample of ``host`` at ``time_ns``, counters counted from ``boot_time_s``.

    ``boot_time_s`` defaults to :data:`BOOT_TIME_S`; change it to simulate a
    reboot. Counters are zero before the boot time. ``psi`` adds the PSI rows
    and uptime of a kernel with PSI; ``cgroup`` the row of a container's cgroup.
    """
    if boot_time_s is None:
        boot_time_s = BOOT_TIME_S
    up = max(0, time_ns - boot_time_s * NS_PER_S)
    rng = random.Random(f"{seed}/{host}/{time_ns}")
    base = seed * 1_000
    cpu_rows = []
    for cpu in range(-1, cpus):
        n = cpus if cpu == -1 else 1
        ticks = [
            _counter(CPU_TICKS_PER_S * n * share // 100, up, base) for share in (30, 10, 55, 5)
        ]
        user, system, idle, iowait = ticks
        cpu_rows.append(CpuRow(cpu, user, 0, system, idle, iowait, 0, 0, 0, 0, 0))
    stat = StatRow(
        boot_time_s=boot_time_s,
        ctxt_total=_counter(5_000, up, base),
        intr_total=_counter(3_000, up, base),
        softirq_total=_counter(1_000, up, base),
        forks_total=_counter(3, up, base),
        procs_running=rng.randint(1, 4),
        procs_blocked=rng.randint(0, 1),
    )
    total = 8 * 1024**3
    available = total // 2 + rng.randrange(0, 1024**3, 4096)
    mem_values = {
        "mem_total_bytes": total,
        "mem_available_bytes": available,
        "mem_free_bytes": available // 2,
        "cached_bytes": available // 3,
        "swap_total_bytes": 2 * 1024**3,
        "swap_free_bytes": 2 * 1024**3 - 4096 * rng.randrange(0, 1000),
    }
    mem = tuple(
        None if c in ABSENT_MEMINFO else mem_values.get(c, (i + 1) * 4096)
        for i, c in enumerate(MEMINFO_COLUMNS)
    )
    vmstat = tuple(
        None
        if c in ABSENT_VMSTAT
        else (1000 + i + rng.randrange(8) if c.startswith("nr_") else _counter(i, up, base))
        for i, c in enumerate(VMSTAT_COLUMNS)
    )
    disk = tuple(_disk(name, i, up, base, rng.randint(0, 2)) for i, name in enumerate(disks))
    net = tuple(_net(name, up, base) for name in ifaces)
    load1 = rng.randrange(0, 400) / 100
    load = LoadRow(load1, round(load1 * 0.8, 2), round(load1 * 0.5, 2), 2, 300, 4000 + seed)
    return HostSample(
        host=host,
        time_ns=time_ns,
        cpu=tuple(cpu_rows),
        stat=stat,
        mem=mem,
        vmstat=vmstat,
        disk=disk,
        net=net,
        load=load,
        psi=_psi(up, base, rng) if psi else (),
        uptime=UptimeRow(up / NS_PER_S, 1.5 * up / NS_PER_S) if psi else None,
        cgroup=_cgroup(up, base) if cgroup else None,
    )


def _psi(up: int, base: int, rng: random.Random) -> tuple[PsiRow, ...]:
    rows = []
    for i, resource in enumerate(("cpu", "memory", "io")):
        avg = rng.randrange(0, 5000) / 100
        full = (
            (avg / 2, avg / 2, avg / 4, _counter(1_000 * i, up, base)) if i else (0.0,) * 3 + (0,)
        )
        rows.append(PsiRow(resource, avg, avg, avg / 2, _counter(20_000, up, base), *full))
    return tuple(rows)


def _cgroup(up: int, base: int) -> CgroupRow:
    usage = _counter(500_000, up, base)
    return CgroupRow(
        "/",
        usage,
        usage * 2 // 3,
        usage // 3,
        _counter(10, up),
        _counter(1, up),
        _counter(5_000, up),
        200_000,
        100_000,
        512 * 1024**2,
        None,
        300 * 1024**2,
        200 * 1024**2,
        12 * 1024**2,
        1024**2,
        _counter(2_000, up, base),
        _counter(3, up),
        _counter(4096 * 100, up, base),
        _counter(4096 * 300, up, base),
        _counter(100, up),
        _counter(300, up),
        42,
    )


def count_values(sample: HostSample) -> int:
    """How many values a sample stores: every row field but the device key."""
    keyed = sum(len(r) - 1 for rows in (sample.cpu, sample.disk, sample.net) for r in rows)
    keyed += sum(len(r) - 1 for r in sample.psi)
    single = (sample.stat, sample.mem, sample.vmstat, sample.load, sample.uptime)
    keyed += len(sample.cgroup) - 1 if sample.cgroup is not None else 0
    return keyed + sum(len(x) for x in single if x is not None)
