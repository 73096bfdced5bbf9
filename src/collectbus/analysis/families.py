"""Host rates by family: every counter as a figure users know from sar, iostat and free.

Each function takes a :data:`Tables` (a function from a wide-table name to
its frame, see :func:`store_tables` and :func:`sample_tables`) and returns one
row per host, tick and, for the per-device families, device. The first sample
of a series, and a step across a reboot or a re-created device, has no rate
(NaN); see :mod:`collectbus.analysis.host` for the counter rules.

- :func:`cpu`: % of CPU time per state, for the whole host (``cpu = -1``) or
  per CPU; USER_HZ ticks cancel out of the ratio;
- :func:`disk`: ``iostat -x`` per device;
- :func:`net`: bytes, packets, errors and drops per second per interface;
- :func:`mem`: used, available, cached; swap in/out, page faults, OOM kills;
- :func:`psi`: pressure averages and the stall share of each interval;
- :func:`cgroup`: the container's CPU use, throttling, memory and io.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

import numpy as np
import numpy.typing as npt
import pandas as pd

from collectbus.analysis.frames import sample_frame, samples
from collectbus.analysis.host import counter_rates, with_boot_time
from collectbus.records import HostSample
from collectbus.store import Store

__all__ = [
    "PAGE_SIZE",
    "USER_HZ",
    "Tables",
    "cgroup",
    "cpu",
    "disk",
    "mem",
    "net",
    "psi",
    "sample_tables",
    "store_tables",
    "uptime",
]

Tables = Callable[[str], pd.DataFrame]

#: USER_HZ, the unit of /proc/stat's times (man 5 proc: sysconf(_SC_CLK_TCK)).
USER_HZ = os.sysconf("SC_CLK_TCK")
#: The page size, the unit of vmstat's pswpin and pswpout.
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
SECTOR_BYTES = 512
_KEYS = ["host", "time_ns"]
CPU_STATES = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def store_tables(
    store: Store,
    *,
    host: str | None = None,
    since_ns: int | None = None,
    until_ns: int | None = None,
) -> Tables:
    """Tables read from a store, each once."""
    cache: dict[str, pd.DataFrame] = {}

    def table(name: str) -> pd.DataFrame:
        if name not in cache:
            cache[name] = samples(store, name, host=host, since_ns=since_ns, until_ns=until_ns)
        return cache[name].copy()

    return table


def sample_tables(host_samples: Iterable[HostSample]) -> Tables:
    """Tables built from samples in memory (a collector's, a result file's)."""
    collected = list(host_samples)
    return lambda name: sample_frame(collected, name)


def _counters(tables: Tables, name: str) -> pd.DataFrame:
    frame = tables(name)
    frame["_order"] = np.arange(len(frame))
    return with_boot_time(frame, tables("host_stat"))


def _rates(
    frame: pd.DataFrame, key: str | None, counters: dict[str, str], *, clamp: bool = False
) -> pd.DataFrame:
    out = counter_rates(frame, key, counters, clamp=clamp)
    if key is not None:
        out.insert(2, key, frame[key].to_numpy())
    return out


def _deltas(frame: pd.DataFrame, key: str | None, counters: dict[str, str]) -> pd.DataFrame:
    """Per-step increases (rates times the step's seconds), and the step's ``seconds``."""
    out = _rates(frame, key, counters)
    time_ns = frame["time_ns"].to_numpy(dtype=np.int64)
    seconds = np.full(len(frame), np.nan)
    seconds[1:] = (time_ns[1:] - time_ns[:-1]) / 1e9
    out["seconds"] = seconds
    for name in counters:
        out[name] = out[name] * seconds
    return out


def cpu(tables: Tables, *, percpu: bool = False) -> pd.DataFrame:
    """% of CPU time per state; ``cpu_percent`` is all but idle and iowait (as psutil).

    ``cpu_irq_percent`` holds hard and soft interrupts together, as ``mpstat``
    shows them apart (``%irq``, ``%soft``): both are given. Idle and iowait
    that went backwards count as zero (man 5 proc). Per CPU with ``percpu``
    (the ``cpu`` column), else the host's aggregate line.
    """
    frame = _counters(tables, "host_cpu")
    frame = frame[(frame["cpu"] >= 0) if percpu else (frame["cpu"] == -1)].reset_index(drop=True)
    deltas = counter_rates(frame, "cpu" if percpu else None, {s: s for s in CPU_STATES}, clamp=True)
    total = deltas[list(CPU_STATES)].sum(axis=1, skipna=False)
    out = deltas[_KEYS].copy()
    if percpu:
        out["cpu"] = frame["cpu"].to_numpy()
    share = {s: (100 * deltas[s] / total).clip(0.0, 100.0) for s in CPU_STATES}
    out["cpu_percent"] = (100 - share["idle"] - share["iowait"]).clip(0.0, 100.0)
    for state in CPU_STATES:
        out[f"cpu_{state}_percent"] = share[state]
    out["cpu_irq_percent"] = (share["irq"] + share["softirq"]).clip(0.0, 100.0)
    out["cpu_hardirq_percent"] = share["irq"]
    # Busy CPUs (cores' worth of work): busy ticks per second over USER_HZ.
    busy = total - deltas["idle"] - deltas["iowait"]
    out["cpu_busy_cores"] = busy / USER_HZ
    return out


def disk(tables: Tables) -> pd.DataFrame:
    """``iostat -x`` per device (sysstat ``iostat.c``, ``compute_ext_disk_stats``).

    ``r_s``/``w_s`` (IOPS), ``read``/``write_bytes_per_s``, ``r_await_ms`` and
    ``w_await_ms`` (time per completed I/O, queue included: Δticks / Δios, 0
    without I/O, as iostat prints), ``aqu_sz`` (Δtime_in_queue / Δt) and
    ``util_percent`` (Δio_ticks / Δt, at most 100). Sectors are 512 bytes
    (``Documentation/admin-guide/iostats.rst``).
    """
    frame = _counters(tables, "host_disk")
    counters = {
        "r": "read_ios",
        "w": "write_ios",
        "rsect": "read_sectors",
        "wsect": "write_sectors",
        "rticks": "read_ticks_ms",
        "wticks": "write_ticks_ms",
        "ioticks": "io_ticks_ms",
        "queue": "time_in_queue_ms",
    }
    d = _deltas(frame, "device", counters)
    ms = d["seconds"] * 1000
    out = d[[*_KEYS, "device"]].copy()
    out["r_s"] = d["r"] / d["seconds"]
    out["w_s"] = d["w"] / d["seconds"]
    out["read_bytes_per_s"] = d["rsect"] * SECTOR_BYTES / d["seconds"]
    out["write_bytes_per_s"] = d["wsect"] * SECTOR_BYTES / d["seconds"]
    out["r_await_ms"] = (d["rticks"] / d["r"]).where(d["r"] != 0, d["r"] * 0)
    out["w_await_ms"] = (d["wticks"] / d["w"]).where(d["w"] != 0, d["w"] * 0)
    out["aqu_sz"] = d["queue"] / ms
    out["util_percent"] = (100 * d["ioticks"] / ms).clip(upper=100.0)
    return out


def net(tables: Tables) -> pd.DataFrame:
    """Bytes, packets, errors and drops per second, received and sent, per interface."""
    frame = _counters(tables, "host_net")
    counters = {
        f"{way}_{what}_per_s": f"{way}_{column}"
        for way in ("rx", "tx")
        for what, column in (("bytes", "bytes"), ("packets", "packets"), ("errors", "errs"))
    }
    counters.update({"rx_drops_per_s": "rx_drop", "tx_drops_per_s": "tx_drop"})
    return _rates(frame, "iface", counters)


def mem(tables: Tables) -> pd.DataFrame:
    """Memory as ``free`` counts it, and the paging events of vmstat per second.

    used = MemTotal - MemAvailable (psutil's ``used``; NaN before Linux 3.14,
    which has no MemAvailable); swap in/out are ``pswpin``/``pswpout`` pages
    times the page size; ``oom_kills`` is the count in the step (Linux 4.13).
    """
    m = tables("host_mem")
    out = m[_KEYS].copy()

    def col(name: str) -> npt.NDArray[np.float64]:
        return m[name].to_numpy(dtype=np.float64, na_value=np.nan)

    out["mem_total_bytes"] = col("mem_total_bytes")
    out["mem_used_bytes"] = col("mem_total_bytes") - col("mem_available_bytes")
    out["mem_available_bytes"] = col("mem_available_bytes")
    out["mem_free_bytes"] = col("mem_free_bytes")
    out["mem_buffers_bytes"] = col("buffers_bytes")
    out["mem_cached_bytes"] = col("cached_bytes")
    out["swap_used_bytes"] = col("swap_total_bytes") - col("swap_free_bytes")
    vm = _counters(tables, "host_vmstat")
    counters = {
        "swap_in_bytes_per_s": "pswpin",
        "swap_out_bytes_per_s": "pswpout",
        "pgfault_per_s": "pgfault",
        "pgmajfault_per_s": "pgmajfault",
        "oom_kills": "oom_kill",
    }
    # A key an older kernel lacks (oom_kill before 4.13) has no figure.
    missing = {c: vm[c].isna().to_numpy(dtype=bool) for c in counters.values()}
    events = _deltas(vm.fillna(dict.fromkeys(counters.values(), 0)), None, counters)
    for name, column in counters.items():
        events[name] = np.where(missing[column], np.nan, events[name])
    for name in ("swap_in_bytes_per_s", "swap_out_bytes_per_s"):
        events[name] *= PAGE_SIZE
    for name in (
        "swap_in_bytes_per_s",
        "swap_out_bytes_per_s",
        "pgfault_per_s",
        "pgmajfault_per_s",
    ):
        events[name] /= events["seconds"]
    return out.merge(events.drop(columns="seconds"), on=_KEYS, how="outer")


def psi(tables: Tables) -> pd.DataFrame:
    """Pressure: ``psi_<resource>_<some|full>_avg10`` (avg60, avg300) and ``..._percent``.

    ``..._percent`` is the share of each interval spent stalled, from the
    microsecond totals (psi.rst: the totals are exact, the averages smoothed).
    """
    frame = _counters(tables, "host_psi")
    no_full = frame["full_total_us"].isna().to_numpy(dtype=bool)  # cpu before Linux 5.13
    rates = _rates(
        frame.fillna({"full_total_us": 0}),
        "resource",
        {"some_percent": "some_total_us", "full_percent": "full_total_us"},
    )
    rates["some_percent"] /= 1e4  # microseconds per second -> % of the second
    rates["full_percent"] = np.where(no_full, np.nan, rates["full_percent"] / 1e4)
    for column in (
        "some_avg10",
        "some_avg60",
        "some_avg300",
        "full_avg10",
        "full_avg60",
        "full_avg300",
    ):
        rates[column] = frame[column].to_numpy(dtype=np.float64, na_value=np.nan)
    wide = rates.pivot(index=_KEYS, columns="resource")
    wide.columns = [f"psi_{pair[1]}_{pair[0]}" for pair in wide.columns]
    return wide.reset_index()


def cgroup(tables: Tables) -> pd.DataFrame:
    """The container's CPU (cores' worth), throttling, memory and io, per cgroup."""
    frame = _counters(tables, "host_cgroup")
    counters = {
        "cpu_usage_cores": "cpu_usage_usec",
        "cpu_throttled_per_s": "cpu_nr_throttled",
        "io_read_bytes_per_s": "io_rbytes",
        "io_write_bytes_per_s": "io_wbytes",
        "pgfault_per_s": "memory_pgfault",
    }
    filled = frame.fillna({c: 0 for c in counters.values()})
    out = _rates(filled, "cgroup", counters)
    out["cpu_usage_cores"] /= 1e6
    quota = frame["cpu_max_quota_us"].to_numpy(dtype=np.float64, na_value=np.nan)
    period = frame["cpu_max_period_us"].to_numpy(dtype=np.float64, na_value=np.nan)
    out["cpu_limit_cores"] = quota / period
    for column in ("memory_current_bytes", "memory_max_bytes", "pids_current"):
        out[column] = frame[column].to_numpy(dtype=np.float64, na_value=np.nan)
    return out


def uptime(tables: Tables) -> pd.DataFrame:
    """Seconds up (/proc/uptime), the boot time (/proc/stat ``btime``) and the idle share.

    ``idle_percent`` is the idle time of all CPUs over the step, against the
    step's length times the CPUs (the ``cpuN`` lines of the same tick).
    """
    up = tables("host_uptime")
    out = up[_KEYS].copy()
    out["uptime_s"] = up["uptime_s"].to_numpy(dtype=np.float64)
    stat = tables("host_stat")[[*_KEYS, "boot_time_s"]].astype({"time_ns": "int64"})
    out = out.merge(stat, on=_KEYS, how="left")
    cpus = tables("host_cpu")
    count = cpus[cpus["cpu"] >= 0].groupby(_KEYS).size().rename("cpus").reset_index()
    out = out.merge(count, on=_KEYS, how="left")
    frame = up.copy()
    frame["_order"] = np.arange(len(frame))
    frame = with_boot_time(frame, tables("host_stat"))
    idle_ms = (frame["idle_s"] * 1000).round().astype("int64")
    frame["idle_ms"] = idle_ms
    idle = counter_rates(frame, None, {"idle_ms_per_s": "idle_ms"})
    out["idle_percent"] = (idle["idle_ms_per_s"].to_numpy() / 10 / out["cpus"]).clip(0.0, 100.0)
    return out.drop(columns="cpus")
