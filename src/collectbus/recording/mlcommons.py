"""One host sample as a sample of MLCommons storage's ``TimeSeriesData``.

MLCommons storage (``mlpstorage``) records host metrics during a benchmark as
``TimeSeriesSample`` objects: ``timestamp``, ``hostname``, then ``diskstats``,
``vmstat``, ``meminfo``, ``loadavg``, ``netdev`` and ``errors``, with the
field names of its ``HostDiskInfo`` and ``HostNetworkInfo`` classes. This
module writes a :class:`~collectbus.records.HostSample` in that shape, and
reads it back. The mapping, field by field:

=====================  ===========================================================
MLCommons              collectbus
=====================  ===========================================================
``timestamp``          ``time_ns``, as ``YYYY-MM-DDTHH:MM:SSZ`` (UTC, whole seconds)
``hostname``           ``host`` (the name given to ``record --hosts``)
``diskstats[]``        ``disk`` rows: ``device_name`` = device, ``reads_completed``
                       = read_ios, ``reads_merged`` = read_merges, ``sectors_read``
                       = read_sectors, ``time_reading_ms`` = read_ticks_ms, the same
                       four for writes, ``ios_in_progress`` = in_flight,
                       ``time_doing_ios_ms`` = io_ticks_ms,
                       ``weighted_time_doing_ios_ms`` = time_in_queue_ms, then
                       ``discards_*``, ``sectors_discarded``, ``time_discarding_ms``,
                       ``flush_requests_completed``, ``time_flushing_ms`` when the
                       kernel prints them (None values left out, as MLCommons does)
``vmstat``             ``{key: value}`` of the known vmstat keys
``meminfo``            ``{Key: value}`` as in the file: kB, or a count for HugePages_*
``loadavg``            ``load_1min``, ``load_5min``, ``load_15min``,
                       ``running_processes``, ``total_processes``
``netdev[]``           ``net`` rows: ``interface_name``, ``rx_bytes``, ``rx_packets``,
                       ``rx_errors``, ``rx_dropped``, ``rx_fifo``, ``rx_frame``,
                       ``rx_compressed``, ``rx_multicast``, and the same for tx with
                       ``tx_collisions``, ``tx_carrier``
``errors``             ``{source: message}``; a round in which the host failed as a
                       whole is a sample of ``timestamp``, ``hostname`` and
                       ``errors`` only, as MLCommons writes one: ``{"ssh": ...}``
                       for an SSH host, ``{"collection": ...}`` for this one
=====================  ===========================================================

``hostname`` is the machine's own name where it is known (this machine's for a
host requested as ``localhost``, the remote one's for an SSH host), else the
requested name, as MLCommons writes it. meminfo and vmstat keys that collectbus
has no column for are written too, from the sample's
:class:`~collectbus.recording.extras.SampleExtras`, and read back into them.

collectbus extras, which MLCommons' ``from_dict`` ignores: ``time_ns`` (exact
time), ``cpu`` (``/proc/stat`` CPU rows: ``cpu`` -1 for the total, ticks per
state), ``stat`` (boot time, context switches, ...), ``major``/``minor`` of each
disk and ``last_pid`` in ``loadavg``. A key of a sample read from a file that
none of this names is kept as it was and written again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from collectbus.collectors.host.collector import SOURCES
from collectbus.errors import RecordError
from collectbus.procfields import MEMINFO_KEYS, VMSTAT_COLUMNS
from collectbus.recording.extras import NO_EXTRAS, SampleExtras
from collectbus.records import CpuRow, DiskRow, HostSample, LoadRow, NetRow, StatRow

__all__ = [
    "ERROR_KEY",
    "SSH_ERROR_KEY",
    "is_error_sample",
    "iso_seconds",
    "read_sample",
    "sample_from_dict",
    "sample_to_dict",
]

#: The ``errors`` key of a round in which this host failed as a whole.
ERROR_KEY = "collection"
#: The ``errors`` key of a round in which an SSH host failed as a whole (as MLCommons writes it).
SSH_ERROR_KEY = "ssh"
# The keys of a sample that read_sample interprets; any other is kept in SampleExtras.other.
_KNOWN_KEYS = frozenset(
    {"timestamp", "hostname", "time_ns", "diskstats", "vmstat", "meminfo", "loadavg"}
    | {"netdev", "cpu", "stat", "errors"}
)

_DISK_NAMES = (
    ("device_name", "device"),
    ("major", "major"),
    ("minor", "minor"),
    ("reads_completed", "read_ios"),
    ("reads_merged", "read_merges"),
    ("sectors_read", "read_sectors"),
    ("time_reading_ms", "read_ticks_ms"),
    ("writes_completed", "write_ios"),
    ("writes_merged", "write_merges"),
    ("sectors_written", "write_sectors"),
    ("time_writing_ms", "write_ticks_ms"),
    ("ios_in_progress", "in_flight"),
    ("time_doing_ios_ms", "io_ticks_ms"),
    ("weighted_time_doing_ios_ms", "time_in_queue_ms"),
    ("discards_completed", "discard_ios"),
    ("discards_merged", "discard_merges"),
    ("sectors_discarded", "discard_sectors"),
    ("time_discarding_ms", "discard_ticks_ms"),
    ("flush_requests_completed", "flush_ios"),
    ("time_flushing_ms", "flush_ticks_ms"),
)
_NET_NAMES = (
    ("interface_name", "iface"),
    ("rx_bytes", "rx_bytes"),
    ("rx_packets", "rx_packets"),
    ("rx_errors", "rx_errs"),
    ("rx_dropped", "rx_drop"),
    ("rx_fifo", "rx_fifo"),
    ("rx_frame", "rx_frame"),
    ("rx_compressed", "rx_compressed"),
    ("rx_multicast", "rx_multicast"),
    ("tx_bytes", "tx_bytes"),
    ("tx_packets", "tx_packets"),
    ("tx_errors", "tx_errs"),
    ("tx_dropped", "tx_drop"),
    ("tx_fifo", "tx_fifo"),
    ("tx_collisions", "tx_colls"),
    ("tx_carrier", "tx_carrier"),
    ("tx_compressed", "tx_compressed"),
)
# MLCommons' HostDiskInfo has no device numbers: a disk read from its file has none
# (None), and is written back without them.
_LOAD_NAMES = (
    ("load_1min", "load1"),
    ("load_5min", "load5"),
    ("load_15min", "load15"),
    ("running_processes", "procs_running"),
    ("total_processes", "procs_total"),
    ("last_pid", "last_pid"),
)
_IN_KB = tuple(column.endswith("_bytes") for _, column in MEMINFO_KEYS)
_MEMINFO_NAMES = frozenset(key for key, _ in MEMINFO_KEYS)
_VMSTAT_NAMES = frozenset(VMSTAT_COLUMNS)


def iso_seconds(time_ns: int) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ``, the time format of MLCommons storage."""
    when = dt.datetime.fromtimestamp(time_ns // 1_000_000_000, tz=dt.UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def is_error_sample(sample: HostSample) -> bool:
    """True for a round in which the host failed as a whole (no data, an error)."""
    return (
        bool(sample.errors)
        and not (
            sample.cpu or sample.stat or sample.mem or sample.vmstat or sample.disk or sample.net
        )
        and sample.load is None
    )


def _error_key(message: str) -> str:
    """The source an error names (``diskstats``), else ``collection``."""
    where = message.partition(": ")[0]
    head, colon, line = where.rpartition(":")
    if colon and line.isdigit():
        where = head  # "host:/proc/net/dev:3" names line 3 of net/dev
    for source in SOURCES:
        if where.endswith("/" + source):
            return source.replace("net/dev", "netdev")
    return ERROR_KEY


def sample_to_dict(sample: HostSample, extras: SampleExtras = NO_EXTRAS) -> dict[str, object]:
    """The sample in MLCommons' shape, plus collectbus extras (see the module docstring)."""
    out: dict[str, object] = {
        "timestamp": iso_seconds(sample.time_ns),
        "hostname": extras.hostname or sample.host,
        "time_ns": sample.time_ns,
    }
    if sample.disk:
        out["diskstats"] = [
            {
                name: getattr(row, field)
                for name, field in _DISK_NAMES
                if getattr(row, field) is not None
            }
            for row in sample.disk
        ]
    if sample.vmstat is not None or extras.vmstat:
        vmstat = {
            k: v for k, v in zip(VMSTAT_COLUMNS, sample.vmstat or (), strict=False) if v is not None
        }
        out["vmstat"] = vmstat | dict(extras.vmstat)
    if sample.mem is not None or extras.meminfo:
        meminfo = {
            key: (v // 1024 if kb else v)
            for (key, _), kb, v in zip(MEMINFO_KEYS, _IN_KB, sample.mem or (), strict=False)
            if v is not None
        }
        out["meminfo"] = meminfo | dict(extras.meminfo)
    if sample.load is not None:
        out["loadavg"] = {
            name: getattr(sample.load, field)
            for name, field in _LOAD_NAMES
            if getattr(sample.load, field) is not None
        }
    if sample.net:
        out["netdev"] = [
            {name: getattr(row, field) for name, field in _NET_NAMES} for row in sample.net
        ]
    if sample.cpu:
        out["cpu"] = [row._asdict() for row in sample.cpu]
    if sample.stat is not None:
        out["stat"] = sample.stat._asdict()
    if extras.errors is not None:
        out["errors"] = dict(extras.errors)
    elif sample.errors:
        errors: dict[str, str] = {}
        for message in sample.errors:
            key = _error_key(message)
            errors[key] = f"{errors[key]}; {message}" if key in errors else message
        out["errors"] = errors
    for key, value in extras.other.items():
        out.setdefault(key, value)
    return out


def sample_from_dict(data: Mapping[str, Any], *, source: str) -> HostSample:
    """Read back a sample written by :func:`sample_to_dict`; RecordError names ``source``."""
    return read_sample(data, source=source)[0]


def read_sample(
    data: Mapping[str, Any], *, source: str, host: str | None = None
) -> tuple[HostSample, SampleExtras]:
    """A sample of a result file (collectbus's or MLCommons'), with every key kept.

    ``host`` is the name the sample is filed under (its ``samples_by_host``
    key), by default its ``hostname``. What the HostSample has no field for
    (meminfo and vmstat keys no column knows, the ``errors`` keys, the
    machine's name when it differs from ``host``, unknown keys) goes to the
    :class:`~collectbus.recording.extras.SampleExtras`. RecordError names ``source``.
    """
    try:
        hostname = str(data["hostname"])
        host = host if host is not None else hostname
        if "time_ns" in data:
            time_ns = int(data["time_ns"])
        else:
            when = dt.datetime.strptime(str(data["timestamp"]), "%Y-%m-%dT%H:%M:%SZ")
            time_ns = int(when.replace(tzinfo=dt.UTC).timestamp()) * 1_000_000_000
        mem = data.get("meminfo")
        vm = data.get("vmstat")
        load = data.get("loadavg")
        stat = data.get("stat")
        errors = data.get("errors")
        sample = HostSample(
            host=host,
            time_ns=time_ns,
            cpu=tuple(CpuRow(**row) for row in data.get("cpu", ())),
            stat=StatRow(**stat) if stat is not None else None,
            mem=(
                tuple(
                    (None if key not in mem else mem[key] * 1024 if kb else mem[key])
                    for (key, _), kb in zip(MEMINFO_KEYS, _IN_KB, strict=True)
                )
                if mem is not None
                else None
            ),
            vmstat=tuple(vm.get(key) for key in VMSTAT_COLUMNS) if vm is not None else None,
            disk=tuple(
                DiskRow(**{field: row.get(name) for name, field in _DISK_NAMES})
                for row in data.get("diskstats", ())
            ),
            net=tuple(
                NetRow(**{field: row[name] for name, field in _NET_NAMES})
                for row in data.get("netdev", ())
            ),
            load=(
                LoadRow(**{field: load.get(name) for name, field in _LOAD_NAMES})
                if load is not None
                else None
            ),
            errors=tuple(str(m) for m in (errors or {}).values()),
        )
        extras = SampleExtras(
            hostname=hostname if hostname != host else None,
            meminfo={str(k): int(v) for k, v in (mem or {}).items() if k not in _MEMINFO_NAMES},
            vmstat={str(k): int(v) for k, v in (vm or {}).items() if k not in _VMSTAT_NAMES},
            errors={str(k): str(v) for k, v in errors.items()} if errors is not None else None,
            other={k: v for k, v in data.items() if k not in _KNOWN_KEYS},
        )
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise RecordError(
            f"{source}: not a time-series sample: {type(err).__name__}: {err}"
        ) from err
    return sample, extras
