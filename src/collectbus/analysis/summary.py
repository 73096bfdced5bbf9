"""The host summary (``collectbus host``) in plain Python, without NumPy or pandas.

:func:`summary_rows` gives the rows of :func:`collectbus.analysis.host.rates`,
one per host and tick with :data:`RATE_COLUMNS`, computed over the rows the
store reads (:meth:`collectbus.store.Store.read_host_rows`) by the rules of
:mod:`collectbus.analysis.host`: a step has no rate (NaN) when it is a
series' first sample, when either of its counters is NULL, when the boot
time moved by more than a second, when the device was missing at a tick in
between, or by :mod:`collectbus.analysis.counters`. A unit test compares
both on the same stores. Importing pandas takes longer than a short window
takes to compute: the command line uses this, Python users the frames.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_right
from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import TYPE_CHECKING, Any, cast

from collectbus.analysis.counters import counter_step
from collectbus.clock import NS_PER_S

if TYPE_CHECKING:
    from collectbus.store.reader import StoreReader

SECTOR_BYTES = 512
BOOT_TIME_JITTER_S = 1

# After node_exporter's diskstats default device exclude
# (``^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$``), plus mmcblk
# partitions, CD drives and the stacked dm/md devices.
EXCLUDED_DISKS = re.compile(
    r"^(z?ram\d+|loop\d+|fd\d+|sr\d+|dm-\d+|md\d+(p\d+)?"
    r"|(h|s|v|xv)d[a-z]+\d+|nvme\d+n\d+p\d+|mmcblk\d+p\d+)$"
)
EXCLUDED_IFACES = frozenset({"lo"})

RATE_COLUMNS = (
    "cpu_percent",
    "cpu_user_percent",
    "cpu_system_percent",
    "cpu_iowait_percent",
    "cpu_steal_percent",
    "mem_used_bytes",
    "mem_available_bytes",
    "mem_cached_bytes",
    "swap_used_bytes",
    "disk_read_bytes_per_s",
    "disk_write_bytes_per_s",
    "net_rx_bytes_per_s",
    "net_tx_bytes_per_s",
    "load1",
    "load5",
    "load15",
)
CPU_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")

#: The families of ``collectbus host --metric``, in order (:data:`collectbus.analysis.views.FAMILIES`).
FAMILY_NAMES = (
    "summary",
    "cpu",
    "percpu",
    "disk",
    "net",
    "mem",
    "psi",
    "cgroup",
    "uptime",
    "load",
)

#: The tables the summary is computed from, and the columns it reads of each.
SOURCES: dict[str, tuple[str, ...]] = {
    "host_stat": ("boot_time_s",),
    "host_cpu": ("cpu", *CPU_FIELDS),
    "host_mem": (
        "mem_total_bytes",
        "mem_available_bytes",
        "cached_bytes",
        "swap_total_bytes",
        "swap_free_bytes",
    ),
    "host_disk": ("device", "read_sectors", "write_sectors"),
    "host_net": ("iface", "rx_bytes", "tx_bytes"),
    "host_load": ("load1", "load5", "load15"),
}

#: A wide table as the store reads it: its column names and its rows.
Table = tuple[Sequence[str], Sequence[Sequence[object]]]
Key = tuple[str, int]


def store_summary(
    store: StoreReader,
    *,
    host: str | None = None,
    since_ns: int | None = None,
    until_ns: int | None = None,
) -> list[dict[str, object]]:
    """:func:`summary_rows` of the store's samples with ``since_ns <= time_ns < until_ns``,
    its tables read in one snapshot."""
    tables = store.read_host_rows(
        tuple(SOURCES), host=host, since_ns=since_ns, until_ns=until_ns, columns=SOURCES
    )
    return summary_rows(tables.__getitem__)


def summary_rows(table: Callable[[str], Table]) -> list[dict[str, object]]:
    """One dict per host and tick, sorted: ``host``, ``time_ns`` and
    :data:`RATE_COLUMNS` (floats, NaN where there is no value)."""
    boots = _boot_times(table("host_stat"))
    out: dict[Key, dict[str, float]] = {}

    def put(key: Key, values: dict[str, float]) -> None:
        out.setdefault(key, {}).update(values)

    cpu_columns, cpu_rows = table("host_cpu")
    cpu_index = list(cpu_columns).index("cpu")
    total = [row for row in cpu_rows if row[cpu_index] == -1]
    for key, _device, step in _rates((cpu_columns, total), None, CPU_FIELDS, boots, clamp=True):
        put(key, _cpu_shares(step))
    for key, values in _gauges(table("host_mem")).items():
        used = _minus(values["mem_total_bytes"], values["mem_available_bytes"])
        swap = _minus(values["swap_total_bytes"], values["swap_free_bytes"])
        put(
            key,
            {
                "mem_used_bytes": used,
                "mem_available_bytes": _float(values["mem_available_bytes"]),
                "mem_cached_bytes": _float(values["cached_bytes"]),
                "swap_used_bytes": swap,
            },
        )
    disk = _summed(
        _rates(
            table("host_disk"),
            "device",
            ("read_sectors", "write_sectors"),
            boots,
            counted=lambda device: not EXCLUDED_DISKS.match(device),
        )
    )
    for key, (read, write) in disk.items():
        put(
            key,
            {
                "disk_read_bytes_per_s": read * SECTOR_BYTES,
                "disk_write_bytes_per_s": write * SECTOR_BYTES,
            },
        )
    net = _summed(
        _rates(
            table("host_net"),
            "iface",
            ("rx_bytes", "tx_bytes"),
            boots,
            counted=lambda iface: iface not in EXCLUDED_IFACES,
        )
    )
    for key, (rx, tx) in net.items():
        put(key, {"net_rx_bytes_per_s": rx, "net_tx_bytes_per_s": tx})
    for key, values in _gauges(table("host_load")).items():
        put(key, {name: _float(values[name]) for name in ("load1", "load5", "load15")})
    return [
        {"host": host, "time_ns": time_ns, **{c: found.get(c, math.nan) for c in RATE_COLUMNS}}
        for (host, time_ns), found in sorted(out.items(), key=lambda item: item[0])
    ]


#: A stored integer, as the driver gives it: ``int`` itself, one C call per
#: value (a function around ``cast`` costs a Python call on every row).
_int = cast(Callable[[object], int], int)


def _float(value: object) -> float:
    """A stored number as a float; NULL is NaN."""
    return math.nan if value is None else float(cast(float, value))


def _minus(a: object, b: object) -> float:
    return _float(a) - _float(b)


def _gauges(table: Table) -> dict[Key, dict[str, object]]:
    columns, rows = table
    return {(str(row[0]), _int(row[1])): dict(zip(columns, row, strict=True)) for row in rows}


def _boot_times(stat: Table) -> dict[str, tuple[list[int], list[float]]]:
    """Per host: the ``host_stat`` times and the boot time at each (NaN for NULL)."""
    columns, rows = stat
    boot = list(columns).index("boot_time_s")
    out: dict[str, tuple[list[int], list[float]]] = {}
    for row in rows:
        times, values = out.setdefault(str(row[0]), ([], []))
        times.append(_int(row[1]))
        values.append(_float(row[boot]))
    return out


def _boot_at(boots: dict[str, tuple[list[int], list[float]]], host: str, time_ns: int) -> float:
    """The host's boot time as of its latest ``host_stat`` row at or before ``time_ns``."""
    times, values = boots.get(host, ([], []))
    i = bisect_right(times, time_ns) - 1
    return values[i] if i >= 0 else math.nan


def _rates(
    table: Table,
    key: str | None,
    counters: Sequence[str],
    boots: dict[str, tuple[list[int], list[float]]],
    *,
    clamp: bool = False,
    counted: Callable[[str], bool] | None = None,
) -> list[tuple[Key, object, tuple[float, ...]]]:
    """(host and time, device, per-second rate of each counter, in the order of
    ``counters``) per row; with ``counted``, only the rows of the devices it counts.

    ``table`` is sorted by host, device and time, as the store reads it.
    """
    columns, stored = table
    # As the driver gives them: host names as str, times and counters as int.
    rows = cast(Sequence[Sequence[Any]], stored)
    names = list(columns)
    key_index = names.index(key) if key is not None else None
    # A row's counters as a tuple, picked in C (two or more: itemgetter of one
    # gives the value itself).
    assert len(counters) >= 2, counters
    pick = cast(
        Callable[[Sequence[Any]], tuple[Any, ...]], itemgetter(*(names.index(c) for c in counters))
    )
    none = (math.nan,) * len(counters)
    # Each time's dense rank among the host's times in this table (all its
    # devices, counted or not): a device whose previous row is more than one
    # rank back was missing in between.
    times_of: dict[str, set[int]] = {}
    for row in rows:
        times_of.setdefault(row[0], set()).add(row[1])
    ranks = {h: {t: rank for rank, t in enumerate(sorted(ts))} for h, ts in times_of.items()}
    # The boot time at each host_stat time: most rows fall on one.
    at_stat = {h: dict(zip(times, values, strict=True)) for h, (times, values) in boots.items()}
    kept: dict[object, bool] = {}
    out: list[tuple[Key, object, tuple[float, ...]]] = []
    host_of_previous: str | None = None
    device_of_previous: object = None
    before = 0
    counters_before: tuple[Any, ...] = ()
    boot_before = math.nan
    rank: dict[int, int] = {}
    boot_at: dict[int, float] = {}
    for row in rows:
        host, time_ns = row[0], row[1]
        device = row[key_index] if key_index is not None else None
        if counted is not None:
            keep = kept.get(device)
            if keep is None:
                keep = kept[device] = counted(str(device))
            if not keep:
                continue
        if host != host_of_previous:
            rank, boot_at = ranks[host], at_stat.get(host, {})
        boot = boot_at.get(time_ns)
        if boot is None:
            boot = _boot_at(boots, host, time_ns)
        values = pick(row)
        if (
            host != host_of_previous
            or device != device_of_previous
            or rank[time_ns] - rank[before] > 1
            or abs(boot - boot_before) > BOOT_TIME_JITTER_S
            or time_ns <= before
        ):
            step = none
        else:
            seconds = (time_ns - before) / NS_PER_S
            step = tuple(
                math.nan
                if value is None or old is None
                else counter_step(old, value, clamp=clamp) / seconds
                for value, old in zip(values, counters_before, strict=True)
            )
        out.append(((host, time_ns), device, step))
        host_of_previous, device_of_previous, before = host, device, time_ns
        counters_before, boot_before = values, boot
    return out


def _clip(value: float) -> float:
    return value if math.isnan(value) else min(max(value, 0.0), 100.0)


def _percent(part: float, whole: float) -> float:
    """``100 * part / whole`` within 0..100, as NumPy divides (x/0: inf, 0/0: NaN)."""
    if math.isnan(part) or math.isnan(whole):
        return math.nan
    if whole == 0:
        return math.nan if part == 0 else _clip(math.copysign(math.inf, part))
    return _clip(100 * part / whole)


def _cpu_shares(step: tuple[float, ...]) -> dict[str, float]:
    """The shares of :data:`CPU_FIELDS` ticks, in that order."""
    user, _nice, system, idle, iowait, _irq, _softirq, steal = step
    total = 0.0
    for ticks in step:
        total += ticks
    busy = total - idle - iowait
    return {
        "cpu_percent": _percent(busy, total),
        "cpu_user_percent": _percent(user, total),
        "cpu_system_percent": _percent(system, total),
        "cpu_iowait_percent": _percent(iowait, total),
        "cpu_steal_percent": _percent(steal, total),
    }


def _summed(rates: list[tuple[Key, object, tuple[float, ...]]]) -> dict[Key, tuple[float, float]]:
    """Per host and tick, the sum over the devices of each of two rates; NaN
    where none of them has one."""
    sums: dict[Key, list[float]] = {}
    for key, _device, step in rates:
        found = sums.setdefault(key, [math.nan, math.nan])
        for i, value in enumerate(step):
            if not math.isnan(value):
                found[i] = value if math.isnan(found[i]) else found[i] + value
    return {key: (a, b) for key, (a, b) in sums.items()}
