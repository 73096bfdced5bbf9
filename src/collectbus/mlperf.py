"""Drop-in for MLCommons storage's time-series collector (``mlpstorage``).

For code written against ``mlpstorage.cluster_collector`` and
``mlpstorage.rules.models``: the same names, arguments and return values,
on collectbus's recorder (aligned ticks, one persistent SSH session per
host, the newest samples kept). Change the imports and nothing else::

    from collectbus.mlperf import (
        MultiHostTimeSeriesCollector, TimeSeriesCollector,
        TimeSeriesData, TimeSeriesSample, collect_timeseries_sample,
    )

    collector = MultiHostTimeSeriesCollector(hosts=["node1", "node2"], interval_seconds=10)
    collector.start()
    run_benchmark()
    samples_by_host = collector.stop()              # {host: [sample dict, ...]}
    collector.write("results/training_20260124_120000_timeseries.json")

What is the same: the sample dicts (``timestamp``, ``hostname``,
``diskstats``, ``vmstat``, ``meminfo``, ``loadavg``, ``netdev``, ``errors``),
with every device and every meminfo and vmstat key the kernel prints; the
``hostname`` of a host requested as ``localhost`` is this machine's name; a
failed round of an SSH host is a sample with ``errors: {"ssh": message}``;
``start()`` twice, ``start()`` after ``stop()`` and ``stop()`` before
``start()`` raise :class:`CollectorStateError`, a ``RuntimeError``; ``stop()``
again returns the same samples. MLCommons' ``TimeSeriesSample.from_dict`` and
``TimeSeriesData.from_dict`` load what this module writes, and this module's
load MLCommons' files, with no key lost.

Where collectbus behaves better, and says so: past ``max_samples`` the
oldest samples are dropped (and counted), not the newest; every host is
sampled on the same aligned ticks, with one SSH session each for the whole
run rather than one ``ssh`` and ``python3`` per sample; ``stop()`` takes a
last sample when the latest is older than half an interval; each sample also
has ``time_ns``, ``cpu`` and ``stat`` (CPU time, which MLCommons does not
record). ``max_workers`` is accepted and not needed (each host has its own
session). See docs/architecture.md, "Recording a benchmark, and MLCommons storage".
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from collectbus.clock import SystemClock
from collectbus.collectors.base import CollectContext
from collectbus.collectors.host.filters import DeviceFilter
from collectbus.collectors.host.procfile import read_once
from collectbus.errors import CollectError, RecordError
from collectbus.recording import timeseries as recording
from collectbus.recording.mlcommons import ERROR_KEY, iso_seconds, sample_to_dict
from collectbus.recording.recorder import Recorder
from collectbus.recording.remote import FILES
from collectbus.recording.ssh import disk_filter_config, frame_extras, sample_from_frames

__all__ = [
    "CollectorStateError",
    "MultiHostTimeSeriesCollector",
    "TimeSeriesCollector",
    "TimeSeriesData",
    "TimeSeriesSample",
    "collect_timeseries_sample",
]


class CollectorStateError(RecordError, RuntimeError):
    """A collector started twice, after it stopped, or stopped before it started."""


# ----------------------------------------------------------------- the models


@dataclass
class TimeSeriesSample:
    """One sample of one host, as ``mlpstorage.rules.models.TimeSeriesSample``.

    ``extra`` holds every other key of the sample (collectbus's ``time_ns``,
    ``cpu``, ``stat``, or anything a file had), written back by :meth:`to_dict`.
    """

    timestamp: str
    hostname: str
    diskstats: list[dict[str, Any]] | None = None
    vmstat: dict[str, int] | None = None
    meminfo: dict[str, int] | None = None
    loadavg: dict[str, float] | None = None
    netdev: list[dict[str, Any]] | None = None
    errors: dict[str, str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The sample's keys, None values left out (as MLCommons writes them), then ``extra``."""
        out = {k: v for k, v in _fields(self).items() if v is not None}
        for key, value in self.extra.items():
            out.setdefault(key, value)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TimeSeriesSample:
        """A sample from its dict; RecordError when ``timestamp`` or ``hostname`` is missing."""
        missing = [k for k in ("timestamp", "hostname") if k not in data]
        if missing:
            raise RecordError(f"not a time-series sample: no {' and no '.join(missing)}")
        names = _SAMPLE_FIELDS
        return cls(
            **{k: v for k, v in data.items() if k in names},
            extra={k: v for k, v in data.items() if k not in names},
        )


@dataclass
class TimeSeriesData:
    """A whole recording, as ``mlpstorage.rules.models.TimeSeriesData``.

    ``extra`` holds the other top-level keys (collectbus's ``collectbus``
    object: exact times, drops, failed rounds), written back by :meth:`to_dict`.
    """

    collection_interval_seconds: float
    start_time: str
    end_time: str
    num_samples: int
    samples_by_host: dict[str, list[TimeSeriesSample]]
    collection_method: str
    hosts_requested: list[str]
    hosts_collected: list[str]
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "collection_interval_seconds": self.collection_interval_seconds,
            "start_time": self.start_time,
            "end_time": self.end_time,
            "num_samples": self.num_samples,
            "samples_by_host": {
                host: [s.to_dict() for s in samples]
                for host, samples in self.samples_by_host.items()
            },
            "collection_method": self.collection_method,
            "hosts_requested": self.hosts_requested,
            "hosts_collected": self.hosts_collected,
        }
        for key, value in self.extra.items():
            out.setdefault(key, value)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TimeSeriesData:
        """A recording from its dict, with MLCommons' defaults for a missing key."""
        by_host = data.get("samples_by_host", {})
        if not isinstance(by_host, Mapping):
            raise RecordError("not a time-series result: samples_by_host is not an object")
        return cls(
            collection_interval_seconds=data.get("collection_interval_seconds", 10.0),
            start_time=data.get("start_time", ""),
            end_time=data.get("end_time", ""),
            num_samples=data.get("num_samples", 0),
            samples_by_host={
                host: [TimeSeriesSample.from_dict(s) for s in samples]
                for host, samples in by_host.items()
            },
            collection_method=data.get("collection_method", "unknown"),
            hosts_requested=list(data.get("hosts_requested", [])),
            hosts_collected=list(data.get("hosts_collected", [])),
            extra={k: v for k, v in data.items() if k not in _DATA_FIELDS},
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> TimeSeriesData:
        """Read a result file (collectbus's or MLCommons'); RecordError naming it if it is bad."""
        source = os.fspath(path)
        try:
            return cls.from_dict(recording.load_document(source))
        except RecordError as err:
            if str(err).startswith(source):
                raise
            raise RecordError(f"{source}: {err}") from err

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write the JSON file atomically, readable by all (0666 less the umask)."""
        return recording.write_document(self.to_dict(), path)

    def to_recording(self) -> recording.TimeSeriesData:
        """The same recording as collectbus's own result (for its report and rates)."""
        return recording.TimeSeriesData.from_dict(self.to_dict())


def _fields(sample: TimeSeriesSample) -> dict[str, Any]:
    return {name: getattr(sample, name) for name in _SAMPLE_FIELDS}


_SAMPLE_FIELDS = tuple(f.name for f in fields(TimeSeriesSample) if f.name != "extra")
_DATA_FIELDS = frozenset(f.name for f in fields(TimeSeriesData) if f.name != "extra")


# ----------------------------------------------------------------- one sample


def collect_timeseries_sample(*, proc_root: str = "/proc") -> dict[str, Any]:
    """One sample of this machine, as MLCommons' ``collect_timeseries_sample()`` returns it.

    Every disk and interface, every meminfo and vmstat key; a file that
    cannot be read or parsed is named in ``errors`` under its name
    (``diskstats``) and the rest is kept.
    """
    name = socket.gethostname()
    frames: dict[str, bytes] = {}
    for relative in FILES:
        try:
            frames[relative] = read_once(os.path.join(proc_root, relative))
        except CollectError:
            frames[relative] = b""
    time_ns = SystemClock().time_ns()
    ctx = CollectContext(host=name)
    try:
        sample = sample_from_frames(
            name, frames, time_ns, ctx, proc_root, DeviceFilter(disk_filter_config())
        )
    except CollectError as err:
        return {
            "timestamp": iso_seconds(time_ns),
            "hostname": name,
            "time_ns": time_ns,
            "errors": {ERROR_KEY: str(err)},
        }
    return sample_to_dict(sample, frame_extras(frames))


# ----------------------------------------------------------------- collectors


class _Collector:
    """What both collectors share: the lifecycle over one Recorder."""

    _kind = "TimeSeriesCollector"

    def __init__(
        self, recorder: Recorder, interval_seconds: float, max_samples: int, logger: Any
    ) -> None:
        self.interval_seconds = interval_seconds
        self.max_samples = max_samples
        self.logger = logger
        self._recorder = recorder
        self._result: recording.TimeSeriesData | None = None
        self._by_host: dict[str, list[dict[str, Any]]] | None = None

    @property
    def hosts(self) -> list[str]:
        return list(self._recorder.hosts)

    def _start(self) -> None:
        if self._result is not None:
            raise CollectorStateError(f"{self._kind} already stopped; create a new instance")
        if self._recorder.is_running:
            raise CollectorStateError(f"{self._kind} already started")
        self._recorder.start()
        if self.logger:
            self.logger.debug(
                f"{self._kind} started ({len(self.hosts)} hosts, "
                f"interval={self.interval_seconds}s, max_samples={self.max_samples})"
            )

    def _stop(self) -> dict[str, list[dict[str, Any]]]:
        if self._by_host is not None:
            return self._by_host
        if not self._recorder.is_running:
            raise CollectorStateError(f"{self._kind} not started")
        self._result = self._recorder.stop()
        self._by_host = _dicts(self._result)
        if self.logger:
            self.logger.debug(f"{self._kind} stopped ({self._result.num_samples} samples)")
            if self._result.dropped_samples:
                self.logger.warning(
                    f"{self._kind} reached max_samples ({self.max_samples}); the "
                    f"{self._result.dropped_samples} oldest samples were dropped"
                )
        return self._by_host

    def _current(self) -> dict[str, list[dict[str, Any]]]:
        if self._by_host is not None:
            return self._by_host
        if self._recorder.start_time is None:
            return {h: [] for h in self.hosts}
        return _dicts(self._recorder.snapshot())

    @property
    def start_time(self) -> str | None:
        """When collection started, ``YYYY-MM-DDTHH:MM:SSZ``; None before."""
        start = self._recorder.start_time
        return iso_seconds(start) if start is not None else None

    @property
    def end_time(self) -> str | None:
        """When collection stopped, ``YYYY-MM-DDTHH:MM:SSZ``; None before."""
        end = self._recorder.end_time
        return iso_seconds(end) if end is not None else None

    @property
    def is_running(self) -> bool:
        return self._recorder.is_running

    def timeseries_data(self) -> TimeSeriesData:
        """The recording as a :class:`TimeSeriesData`, by MLCommons' rules (after stop())."""
        if self._result is None:
            raise CollectorStateError(f"{self._kind} has not stopped: no recording yet")
        return TimeSeriesData.from_dict(self._result.to_dict())

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write the recording's JSON file (after stop()), as MLCommons' benchmarks name it."""
        return self.timeseries_data().write(path)


def _dicts(data: recording.TimeSeriesData) -> dict[str, list[dict[str, Any]]]:
    doc = data.to_dict()["samples_by_host"]
    assert isinstance(doc, dict)
    return {str(host): list(samples) for host, samples in doc.items()}


class TimeSeriesCollector(_Collector):
    """This machine's metrics every ``interval_seconds``, as MLCommons' ``TimeSeriesCollector``.

    ``stop()`` returns the samples (dicts, oldest first); ``samples`` is what
    has been collected so far. ``proc_root`` (collectbus) reads another procfs.
    """

    _kind = "TimeSeriesCollector"

    def __init__(
        self,
        interval_seconds: float = 10.0,
        max_samples: int = 3600,
        logger: logging.Logger | Any = None,
        *,
        proc_root: str = "/proc",
    ) -> None:
        self._hostname = socket.gethostname()
        recorder = Recorder(
            [self._hostname],
            interval=interval_seconds,
            max_samples=max_samples,
            proc_root=proc_root,
            local_names=(self._hostname,),
        )
        super().__init__(recorder, interval_seconds, max_samples, logger)

    def start(self) -> None:
        """Start sampling in the background; the first sample is now."""
        self._start()

    def stop(self) -> list[dict[str, Any]]:
        """Stop, and return every sample kept; again, the same list."""
        return self._stop()[self._hostname]

    @property
    def samples(self) -> list[dict[str, Any]]:
        """The samples so far (all of them once stopped)."""
        return self._current()[self._hostname]


class MultiHostTimeSeriesCollector(_Collector):
    """Several hosts at once, as MLCommons' ``MultiHostTimeSeriesCollector``.

    ``hosts`` may carry MPI slot counts (``node1:4``); duplicates are dropped.
    ``localhost``, its addresses and this machine's name are read here, other
    names over SSH (``ssh_username`` as the user, ``ssh_timeout`` capped at the
    interval for one round). collectbus's own keywords: ``ssh_config`` (an
    ``ssh -F`` file), ``ssh_options`` (``KEY=VALUE``), ``ssh_command``,
    ``proc_root``/``remote_proc_root``, ``disk_include``/``disk_exclude``.
    """

    _kind = "MultiHostTimeSeriesCollector"

    def __init__(
        self,
        hosts: Sequence[str],
        interval_seconds: float = 10.0,
        max_samples: int = 3600,
        ssh_username: str | None = None,
        ssh_timeout: int = 30,
        max_workers: int = 10,
        logger: logging.Logger | Any = None,
        *,
        ssh_config: str | None = None,
        ssh_options: Sequence[str] = (),
        ssh_command: str = "ssh",
        proc_root: str = "/proc",
        remote_proc_root: str = "/proc",
        disk_include: Sequence[str] = (),
        disk_exclude: Sequence[str] = (),
    ) -> None:
        names = _unique_hosts(hosts)
        if not names:
            raise RecordError(f"hosts: no host names in {list(hosts)!r}")
        options = [*ssh_options, *([f"User={ssh_username}"] if ssh_username else [])]
        recorder = Recorder(
            names,
            interval=interval_seconds,
            max_samples=max_samples,
            timeout=min(float(ssh_timeout), max(1.0, interval_seconds)),
            proc_root=proc_root,
            remote_proc_root=remote_proc_root,
            ssh_command=ssh_command,
            ssh_config=ssh_config,
            ssh_options=options,
            disk_include=disk_include,
            disk_exclude=disk_exclude,
        )
        super().__init__(recorder, interval_seconds, max_samples, logger)
        self.ssh_username = ssh_username
        self.ssh_timeout = ssh_timeout
        self.max_workers = max_workers

    def start(self) -> None:
        """Start sampling every host in the background; the first round is now."""
        self._start()

    def stop(self) -> dict[str, list[dict[str, Any]]]:
        """Stop, and return every host's samples; again, the same dict."""
        return self._stop()

    @property
    def samples_by_host(self) -> dict[str, list[dict[str, Any]]]:
        """Every host's samples so far (all of them once stopped)."""
        return self._current()

    def get_hosts_with_data(self) -> list[str]:
        """The hosts with at least one sample, failed rounds included."""
        return [host for host, samples in self._current().items() if samples]


def _unique_hosts(hosts: Sequence[str]) -> list[str]:
    """Names without MPI slot counts (``node1:4``), first occurrence kept.

    Only a name with one colon has a slot count: ``::1`` stays ``::1``.
    """
    out: list[str] = []
    for host in hosts:
        name = host.strip()
        head, colon, slots = name.rpartition(":")
        if colon and slots.isdigit() and ":" not in head:
            name = head.strip()
        if name and name not in out:
            out.append(name)
    return out
