"""Every host of the store at a glance: its last sample, its state, its latest figures.

What ``collectbus hosts`` lists and the dashboard's fleet page draws. A
host's state comes from the age of its last sample (``hosts.last_seen_ns``)
against the host collector's interval (``[collectors.host] interval``, else
its tier's):

- ``reporting``: the last sample is at most :data:`LATE_INTERVALS` intervals old;
- ``late``: older than that;
- ``silent``: older than :data:`SILENT_INTERVALS` intervals, or than
  ``silent_after_s`` when given.

The figures are the newest of each host, read in one query per table
(:meth:`collectbus.store.reader.StoreReader.latest_host_rows`) and computed by
the rules of the ``collectbus host`` summary
(:func:`collectbus.analysis.summary.summary_rows`): CPU busy % between the
host's last two samples when they are at most ``LATE_INTERVALS`` intervals
apart, memory used % (total - available, of total) and load1 of its last
sample. A figure the host did not report is None.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from collectbus.analysis.summary import CPU_FIELDS, SOURCES, summary_rows
from collectbus.clock import NS_PER_S

if TYPE_CHECKING:
    from collectbus.store.reader import StoreReader

State = Literal["reporting", "late", "silent"]
STATES: tuple[State, ...] = ("reporting", "late", "silent")
#: A host is late past this many intervals without a sample, silent past the second.
LATE_INTERVALS = 3
SILENT_INTERVALS = 10

#: ``--sort`` keys: the figures largest first, ``name`` A to Z, ``last`` oldest first.
SORTS = ("cpu", "mem", "load", "name", "last")

#: What is read of each table, and how many of its newest rows per host.
_TABLES: dict[str, tuple[str, ...]] = {
    "host_stat": ("boot_time_s",),
    "host_cpu": ("cpu", *CPU_FIELDS),
    "host_mem": ("mem_total_bytes", "mem_available_bytes"),
    "host_load": ("load1",),
}
_PER_HOST = {"host_stat": 2, "host_cpu": 2, "host_mem": 1, "host_load": 1}
#: The rows of every CPU together (``cpu = -1``): one row per host and tick.
_WHERE: dict[str, tuple[str, object]] = {"host_cpu": ("cpu", -1)}


@dataclass(frozen=True, slots=True)
class Thresholds:
    """When a host becomes late and silent, from the host collector's interval."""

    interval_s: float
    silent_after_s: float | None = None

    @property
    def late_s(self) -> float:
        return LATE_INTERVALS * self.interval_s

    @property
    def silent_s(self) -> float:
        if self.silent_after_s is not None:
            return self.silent_after_s
        return SILENT_INTERVALS * self.interval_s

    def state(self, age_s: float) -> State:
        """The state of a host whose last sample is ``age_s`` seconds old."""
        if age_s > self.silent_s:
            return "silent"
        if age_s > self.late_s:
            return "late"
        return "reporting"


@dataclass(frozen=True, slots=True)
class HostStatus:
    """One host: its last sample, state and latest figures (None: not reported)."""

    host: str
    last_sample_ns: int
    age_s: float
    state: State
    cpu_percent: float | None
    mem_used_percent: float | None
    load1: float | None


def fleet_status(reader: StoreReader, thresholds: Thresholds, *, now_ns: int) -> list[HostStatus]:
    """Every host of the store, by name, as of ``now_ns``."""
    reach_ns = int(thresholds.late_s * NS_PER_S)
    hosts, tables = reader.latest_host_rows(
        _TABLES, reach_ns=reach_ns, per_host=_PER_HOST, where=_WHERE
    )
    # The summary's CPU step alone: its other tables are given empty.
    read: dict[str, tuple[tuple[str, ...], list[tuple[object, ...]]]] = {
        name: (("host", "time_ns", *columns), []) for name, columns in SOURCES.items()
    }
    read.update({name: tables[name] for name in ("host_stat", "host_cpu")})
    cpu: dict[str, float] = {}
    newest_cpu: dict[str, int] = {}
    for row in tables["host_cpu"][1]:  # the step ending at a host's newest CPU row
        newest_cpu[str(row[0])] = max(newest_cpu.get(str(row[0]), 0), int(str(row[1])))
    for summary in summary_rows(read.__getitem__):
        host, time_ns = str(summary["host"]), int(str(summary["time_ns"]))
        if newest_cpu.get(host) == time_ns:
            cpu[host] = float(str(summary["cpu_percent"]))
    mem = {str(r[0]): _mem_percent(r[2], r[3]) for r in tables["host_mem"][1]}
    load = {str(r[0]): _number(r[2]) for r in tables["host_load"][1]}
    out = []
    for found in hosts:
        name, last_ns = str(found["name"]), int(str(found["last_seen_ns"]))
        age_s = max(0.0, (now_ns - last_ns) / NS_PER_S)
        out.append(
            HostStatus(
                host=name,
                last_sample_ns=last_ns,
                age_s=age_s,
                state=thresholds.state(age_s),
                cpu_percent=_number(cpu.get(name)),
                mem_used_percent=mem.get(name),
                load1=load.get(name),
            )
        )
    return out


def sort_hosts(
    hosts: Sequence[HostStatus], by: str = "name", top: int | None = None
) -> list[HostStatus]:
    """``hosts`` in the order of ``by`` (:data:`SORTS`), the first ``top``:
    a figure largest first with the hosts lacking it last, ``name`` A to Z,
    ``last`` the oldest last sample first; ties by name."""
    if by not in SORTS:
        raise ValueError(f"unknown sort {by!r}; one of {', '.join(SORTS)}")
    ordered = sorted(hosts, key=lambda h: h.host)
    if by == "last":
        ordered.sort(key=lambda h: h.last_sample_ns)
    elif by != "name":
        figure = {"cpu": "cpu_percent", "mem": "mem_used_percent", "load": "load1"}[by]

        def largest_first(h: HostStatus) -> tuple[bool, float]:
            value = getattr(h, figure)
            return (value is None, 0.0 if value is None else -value)

        ordered.sort(key=largest_first)
    return ordered if top is None else ordered[:top]


def _number(value: object) -> float | None:
    """A stored or computed figure; NULL and NaN are None."""
    if value is None:
        return None
    number = float(str(value))
    return None if math.isnan(number) else number


def _mem_percent(total: object, available: object) -> float | None:
    whole, free = _number(total), _number(available)
    if whole is None or free is None or whole <= 0:
        return None
    return 100.0 * (whole - free) / whole
