"""Records: what collectors emit and the bus carries.

Records are frozen, slotted, keyword-only dataclasses with integer nanosecond
times. They carry no serialisation of their own: :mod:`collectbus.codec` does
that for every record type. Units go in names (``*_bytes``, ``*_ms``); raw
kernel counters keep the kernel's names and units.

A host sample holds one tuple per /proc source. Rows of files with a fixed
layout are ``NamedTuple`` types whose fields are the columns of the matching
wide table (``host_cpu``, ``host_disk``, ...). The key-value files (meminfo,
vmstat) are tuples aligned to :data:`collectbus.procfields.MEMINFO_COLUMNS`
and :data:`~collectbus.procfields.VMSTAT_COLUMNS`, with None for a key the
kernel does not have.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

# ---------------------------------------------------------------- host rows


class CpuRow(NamedTuple):
    """One ``cpuN`` line of /proc/stat, in USER_HZ ticks (``man 5 proc``).

    ``cpu`` is -1 for the aggregate ``cpu`` line. guest and guest_nice are
    already included in user and nice by the kernel.
    """

    cpu: int
    user: int
    nice: int
    system: int
    idle: int
    iowait: int
    irq: int
    softirq: int
    steal: int
    guest: int
    guest_nice: int


class StatRow(NamedTuple):
    """The whole-system lines of /proc/stat."""

    boot_time_s: int
    ctxt_total: int
    intr_total: int
    softirq_total: int
    forks_total: int
    procs_running: int
    procs_blocked: int


class DiskRow(NamedTuple):
    """One line of /proc/diskstats (``Documentation/admin-guide/iostats.rst``).

    Kernels before 4.18 print 14 fields, 4.18 adds the 4 discard fields and 5.5
    the 2 flush fields; absent fields are None. Sectors are 512 bytes whatever
    the device's sector size.
    """

    device: str
    major: int
    minor: int
    read_ios: int
    read_merges: int
    read_sectors: int
    read_ticks_ms: int
    write_ios: int
    write_merges: int
    write_sectors: int
    write_ticks_ms: int
    in_flight: int
    io_ticks_ms: int
    time_in_queue_ms: int
    discard_ios: int | None
    discard_merges: int | None
    discard_sectors: int | None
    discard_ticks_ms: int | None
    flush_ios: int | None
    flush_ticks_ms: int | None


class NetRow(NamedTuple):
    """One interface line of /proc/net/dev: 8 receive and 8 transmit counters."""

    iface: str
    rx_bytes: int
    rx_packets: int
    rx_errs: int
    rx_drop: int
    rx_fifo: int
    rx_frame: int
    rx_compressed: int
    rx_multicast: int
    tx_bytes: int
    tx_packets: int
    tx_errs: int
    tx_drop: int
    tx_fifo: int
    tx_colls: int
    tx_carrier: int
    tx_compressed: int


class LoadRow(NamedTuple):
    """/proc/loadavg."""

    load1: float
    load5: float
    load15: float
    procs_running: int
    procs_total: int
    last_pid: int


# ------------------------------------------------------------------ records


@dataclass(frozen=True, slots=True, kw_only=True)
class HostSample:
    """Everything read from one host's /proc at one tick.

    A source that failed is empty (or None) here and named in ``errors``, so
    one malformed file never costs the rest of the sample.
    """

    host: str
    time_ns: int
    cpu: tuple[CpuRow, ...] = ()
    stat: StatRow | None = None
    mem: tuple[int | None, ...] | None = None
    vmstat: tuple[int | None, ...] | None = None
    disk: tuple[DiskRow, ...] = ()
    net: tuple[NetRow, ...] = ()
    load: LoadRow | None = None
    errors: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class CollectionEvent:
    """One collection by one collector: what ``collection_log`` keeps.

    ``status`` is ``ok``, ``partial`` (some sources failed), ``error``,
    ``timeout`` or ``skipped``.
    """

    source: str
    host: str
    started_ns: int
    duration_ns: int
    status: str
    records: int = 0
    error: str | None = None
    stale: bool = False
    details: tuple[tuple[str, str], ...] = field(default=())


@dataclass(frozen=True, slots=True, kw_only=True)
class CallRecord:
    """One call of a handler wrapped by :class:`collectbus.calls.CallCollector`.

    ``started_ns`` is wall-clock time; ``elapsed_ns`` was measured on the
    monotonic performance counter. A failed call has ``error_type`` (the
    exception's qualified class name), its message and a short traceback
    (innermost frames, ``file:line in function``, no source lines). ``args``
    and ``result`` are truncated text, present only when the collector
    captures them; a record never holds a live reference to either.
    """

    handler: str
    qualname: str
    host: str
    pid: int
    thread_id: int
    started_ns: int
    elapsed_ns: int
    error_type: str | None = None
    error_message: str | None = None
    traceback: str | None = None
    args: str | None = None
    result: str | None = None

    @property
    def ok(self) -> bool:
        """True when the call returned (or its generator was exhausted or closed)."""
        return self.error_type is None


Record = HostSample | CollectionEvent | CallRecord
