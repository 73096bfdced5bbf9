"""``/metrics`` gauges of each host's latest rates, and the JSON rows of the API.

:class:`HostRatesSource` runs :func:`collectbus.analysis.host.rates` over the
last ``window_s`` of samples only (a rate needs two samples; the window needs
to hold a few), and exposes, per host, the latest value of each rate. Hosts
with no sample in the window are left out, so a host that stopped reporting
disappears instead of showing old figures as current.

Names follow Prometheus conventions: base units (bytes, seconds), and shares
as ratios from 0 to 1 (``collectbus host`` prints the same CPU figures as
percentages).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from collectbus.clock import NS_PER_S, Clock
from collectbus.store import Store

#: Default window of samples the rates are computed over, in seconds.
DEFAULT_WINDOW_S = 300.0

# (metric, help, rate column, scale)
_GAUGES = (
    ("collectbus_host_cpu_busy_ratio", "Share of CPU time not idle nor waiting on I/O.", "cpu_percent", 0.01),
    ("collectbus_host_memory_used_bytes", "Memory in use: total minus available.", "mem_used_bytes", 1.0),
    ("collectbus_host_memory_available_bytes", "Memory available (MemAvailable).", "mem_available_bytes", 1.0),
    ("collectbus_host_memory_cached_bytes", "Page cache (Cached).", "mem_cached_bytes", 1.0),
    ("collectbus_host_swap_used_bytes", "Swap in use.", "swap_used_bytes", 1.0),
    ("collectbus_host_disk_read_bytes_per_second", "Bytes read from whole disks per second.", "disk_read_bytes_per_s", 1.0),
    ("collectbus_host_disk_written_bytes_per_second", "Bytes written to whole disks per second.", "disk_write_bytes_per_s", 1.0),
    ("collectbus_host_network_receive_bytes_per_second", "Bytes received per second, all interfaces but lo.", "net_rx_bytes_per_s", 1.0),
    ("collectbus_host_network_transmit_bytes_per_second", "Bytes sent per second, all interfaces but lo.", "net_tx_bytes_per_s", 1.0),
    ("collectbus_host_load1", "Load average over 1 minute.", "load1", 1.0),
    ("collectbus_host_load5", "Load average over 5 minutes.", "load5", 1.0),
    ("collectbus_host_load15", "Load average over 15 minutes.", "load15", 1.0),
)  # fmt: skip
_CPU_MODES = ("user", "system", "iowait", "steal")


def latest_rates(store: Store, *, since_ns: int) -> dict[str, dict[str, float]]:
    """Per host, the latest value of each rate column (NaN if none in the window)
    and ``time_ns``, the time of the host's latest sample."""
    from collectbus.analysis.host import rates

    latest = rates(store, since_ns=since_ns).groupby("host", sort=True).last()
    return {
        str(host): {str(k): float(v) for k, v in row.items()}
        for host, row in latest.to_dict("index").items()
    }


class HostRatesSource:
    """Latest CPU, memory, disk, network and load figures of every host."""

    name = "host rates"

    def __init__(self, store: Store, *, clock: Clock, window_s: float = DEFAULT_WINDOW_S):
        self.store = store
        self.clock = clock
        self.window_ns = int(window_s * NS_PER_S)

    def _families(self) -> list[GaugeMetricFamily]:
        families = [GaugeMetricFamily(name, doc, labels=["host"]) for name, doc, _, _ in _GAUGES]
        families.append(
            GaugeMetricFamily(
                "collectbus_host_cpu_mode_ratio",
                "Share of CPU time in a mode (user, system, iowait, steal).",
                labels=["host", "mode"],
            )
        )
        families.append(
            GaugeMetricFamily(
                "collectbus_host_sample_timestamp_seconds",
                "When the host's latest sample was taken (Unix time).",
                labels=["host"],
            )
        )
        return families

    def describe(self) -> Iterable[Metric]:
        return self._families()

    def collect(self) -> Iterable[Metric]:
        latest = latest_rates(self.store, since_ns=self.clock.time_ns() - self.window_ns)
        families = self._families()
        gauges, modes, stamp = families[: len(_GAUGES)], families[-2], families[-1]
        for name, row in latest.items():
            for family, (_, _, column, scale) in zip(gauges, _GAUGES, strict=True):
                value = float(row[column])
                if not math.isnan(value):
                    family.add_metric([name], value * scale)
            for mode in _CPU_MODES:
                value = float(row[f"cpu_{mode}_percent"])
                if not math.isnan(value):
                    modes.add_metric([name, mode], value / 100)
            stamp.add_metric([name], row["time_ns"] / NS_PER_S)
        return families
