"""Host rates: stored counters turned into CPU %, bytes per second, memory and load.

One row per host and tick. Counters become rates between consecutive samples
of the same series (host, and device for disks and interfaces), divided by
the actual time between the two samples, with
:func:`~collectbus.analysis.counters.counter_delta`'s wrap and reset rules. A
step has no rate (NaN) when it is a series' first sample in the window, when
either of its counters is NULL (a value out of range, :mod:`collectbus.values`), when
the boot time changed (``host_stat.boot_time_s``; changes of up to 1 s are
clock adjustments, not reboots), or when the device was missing from the
table at a tick in between (re-created). Sums over devices skip devices
without a rate, and are NaN only when no device has one.

Which devices count (a name heuristic for now; a better filter comes later):

- disks: whole physical disks only. Left out are loop, ram, zram, fd and sr
  devices, partitions (``sda1``, ``nvme0n1p1``, ``mmcblk0p1``) and the
  device-mapper and md devices stacked on other disks (``dm-0``, ``md0``),
  so that no I/O is counted twice. Sectors are 512 bytes
  (``Documentation/admin-guide/iostats.rst``).
- interfaces: all but ``lo``. Virtual interfaces (bridges, veth) are counted.

:mod:`collectbus.analysis.summary` computes the same rows in plain Python,
for the command line (which then needs neither NumPy nor pandas).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import reduce

import numpy as np
import numpy.typing as npt
import pandas as pd

from collectbus.analysis.counters import counter_delta
from collectbus.analysis.frames import samples
from collectbus.analysis.summary import (
    BOOT_TIME_JITTER_S,
    CPU_FIELDS,
    EXCLUDED_DISKS,
    EXCLUDED_IFACES,
    RATE_COLUMNS,
    SECTOR_BYTES,
)
from collectbus.clock import NS_PER_S
from collectbus.store import Store

__all__ = [
    "EXCLUDED_DISKS",
    "EXCLUDED_IFACES",
    "RATE_COLUMNS",
    "counter_rates",
    "rates",
    "rates_from_tables",
    "step_resets",
    "with_boot_time",
]

_KEYS = ["host", "time_ns"]


def _floats(frame: pd.DataFrame, column: str) -> npt.NDArray[np.float64]:
    return frame[column].to_numpy(dtype=np.float64, na_value=np.nan)


def with_boot_time(frame: pd.DataFrame, stat: pd.DataFrame) -> pd.DataFrame:
    """Add each row's boot time: the host's latest ``host_stat`` row at or before it."""
    # Both sides' host column as plain objects: an empty frame and a full one
    # can come back from the store with different string dtypes, which
    # merge_asof refuses to compare.
    boot = stat[[*_KEYS, "boot_time_s"]].astype({"host": object, "time_ns": "int64"})
    boot["boot_time_s"] = _floats(boot, "boot_time_s")
    merged = pd.merge_asof(
        frame.reset_index(drop=True).astype({"host": object}).sort_values("time_ns", kind="stable"),
        boot.sort_values("time_ns", kind="stable"),
        on="time_ns",
        by="host",
        direction="backward",
    )
    return merged.sort_values("_order", kind="stable").reset_index(drop=True)


def step_resets(frame: pd.DataFrame, key: str | None) -> npt.NDArray[np.bool_]:
    """True where a row starts a new step with no rate (see the module docstring).

    ``frame`` is sorted by host, key and time and has ``boot_time_s``.
    """
    n = len(frame)
    hosts = frame["host"].to_numpy(dtype=object)
    same = np.zeros(n, dtype=bool)
    same[1:] = hosts[1:] == hosts[:-1]
    if key is not None:
        keys = frame[key].to_numpy(dtype=object)
        same[1:] &= keys[1:] == keys[:-1]
    tick = frame.groupby("host", sort=False)["time_ns"].rank(method="dense").to_numpy()
    boot = _floats(frame, "boot_time_s")
    time_ns = frame["time_ns"].to_numpy(dtype=np.int64)
    reset = ~same
    reset[1:] |= tick[1:] - tick[:-1] > 1  # the device was missing at a tick in between
    reset[1:] |= np.abs(boot[1:] - boot[:-1]) > BOOT_TIME_JITTER_S  # NaN compares False
    reset[1:] |= time_ns[1:] <= time_ns[:-1]
    return reset


def counter_rates(
    frame: pd.DataFrame, key: str | None, counters: dict[str, str], *, clamp: bool = False
) -> pd.DataFrame:
    """Per-row rates ``{output: per-second rate of column}``, keyed by host and time.

    ``clamp`` makes a counter that went backwards count as zero (CPU ticks).
    """
    reset = step_resets(frame, key)
    time_ns = frame["time_ns"].to_numpy(dtype=np.int64)
    seconds = np.full(len(frame), np.nan)
    seconds[1:] = (time_ns[1:] - time_ns[:-1]) / NS_PER_S
    out = frame[_KEYS].copy()
    for name, column in counters.items():
        values, unknown = _counter_values(frame[column])
        previous = np.concatenate([values[:1], values[:-1]])
        out[name] = counter_delta(previous, values, reset | unknown, clamp=clamp) / seconds
    return out


def _counter_values(
    series: pd.Series,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """A counter column as int64, and where a step has no delta because a value is NULL.

    A counter out of range is stored as NULL (:mod:`collectbus.values`): the
    steps into and out of it have no rate.
    """
    missing = series.isna().to_numpy(dtype=bool)
    values = (
        series.fillna(0).to_numpy(dtype=np.int64)
        if missing.any()
        else series.to_numpy(dtype=np.int64)
    )
    unknown = missing.copy()
    unknown[1:] |= missing[:-1]
    return values, unknown


def _cpu(cpu: pd.DataFrame) -> pd.DataFrame:
    total = cpu[cpu["cpu"] == -1].reset_index(drop=True)
    deltas = counter_rates(total, None, {f: f for f in CPU_FIELDS}, clamp=True)
    all_ticks = deltas[list(CPU_FIELDS)].sum(axis=1, skipna=False)
    busy = all_ticks - deltas["idle"] - deltas["iowait"]
    out = deltas[_KEYS].copy()
    # Both are per second, so their ratio is the share of the interval.
    # Clipped: summing per-second floats can overshoot 100 by a rounding error.
    out["cpu_percent"] = (100 * busy / all_ticks).clip(0.0, 100.0)
    for field in ("user", "system", "iowait", "steal"):
        out[f"cpu_{field}_percent"] = (100 * deltas[field] / all_ticks).clip(0.0, 100.0)
    return out


def _summed(rates: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    return rates.groupby(_KEYS, sort=False)[columns].sum(min_count=1).reset_index()


def _disk(disk: pd.DataFrame) -> pd.DataFrame:
    rates = counter_rates(
        disk,
        "device",
        {"disk_read_bytes_per_s": "read_sectors", "disk_write_bytes_per_s": "write_sectors"},
    )
    names = disk["device"].to_numpy(dtype=object)
    rates = rates[np.array([not EXCLUDED_DISKS.match(str(d)) for d in names], dtype=bool)]
    summed = _summed(rates, ["disk_read_bytes_per_s", "disk_write_bytes_per_s"])
    summed[["disk_read_bytes_per_s", "disk_write_bytes_per_s"]] *= SECTOR_BYTES
    return summed


def _net(net: pd.DataFrame) -> pd.DataFrame:
    rates = counter_rates(
        net, "iface", {"net_rx_bytes_per_s": "rx_bytes", "net_tx_bytes_per_s": "tx_bytes"}
    )
    rates = rates[~net["iface"].isin(EXCLUDED_IFACES).to_numpy(dtype=bool)]
    return _summed(rates, ["net_rx_bytes_per_s", "net_tx_bytes_per_s"])


def _mem(mem: pd.DataFrame) -> pd.DataFrame:
    out = mem[_KEYS].copy()
    out["mem_used_bytes"] = _floats(mem, "mem_total_bytes") - _floats(mem, "mem_available_bytes")
    out["mem_available_bytes"] = _floats(mem, "mem_available_bytes")
    out["mem_cached_bytes"] = _floats(mem, "cached_bytes")
    out["swap_used_bytes"] = _floats(mem, "swap_total_bytes") - _floats(mem, "swap_free_bytes")
    return out


def _load(load: pd.DataFrame) -> pd.DataFrame:
    return load[[*_KEYS, "load1", "load5", "load15"]].copy()


def rates(
    store: Store,
    *,
    host: str | None = None,
    since_ns: int | None = None,
    until_ns: int | None = None,
) -> pd.DataFrame:
    """One row per host and tick: ``host``, ``time_ns`` and :data:`RATE_COLUMNS`.

    The first sample in the window has no rates (they need a previous sample).
    """

    def table(name: str) -> pd.DataFrame:
        return samples(store, name, host=host, since_ns=since_ns, until_ns=until_ns)

    return rates_from_tables(table)


def rates_from_tables(table: Callable[[str], pd.DataFrame]) -> pd.DataFrame:
    """:func:`rates` over any source of tables (a store, samples in memory)."""
    stat = table("host_stat")

    def counters(name: str) -> pd.DataFrame:
        frame = table(name)
        frame["_order"] = np.arange(len(frame))
        return with_boot_time(frame, stat)

    parts = [
        _cpu(counters("host_cpu")),
        _mem(table("host_mem")),
        _disk(counters("host_disk")),
        _net(counters("host_net")),
        _load(table("host_load")),
    ]
    parts = [p.astype({"host": object, "time_ns": "int64"}) for p in parts]
    merged = reduce(lambda a, b: a.merge(b, on=_KEYS, how="outer"), parts)
    merged = merged.sort_values(_KEYS, kind="stable").reset_index(drop=True)
    return merged.reindex(columns=[*_KEYS, *RATE_COLUMNS]).astype(
        {c: "float64" for c in RATE_COLUMNS}
    )
