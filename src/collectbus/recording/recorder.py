"""The :class:`Recorder`: host metrics of many hosts, sampled together while something runs.

::

    with Recorder(hosts=["node1", "node2"], interval=1.0) as rec:
        run_the_benchmark()
    data = rec.result                      # TimeSeriesData
    timeseries.write(data, "run/timeseries.json")

Every host is one collector on a :class:`~collectbus.bus.CollectionBus` with
the same interval, so all hosts are sampled on the same aligned ticks
(``start + n * interval``, no drift) and in parallel, each on its own pool
thread. This host is read through :class:`~collectbus.collectors.host.collector.HostCollector`
(procfs); every other host through its SSH session (:mod:`collectbus.recording.ssh`).
Every disk is recorded, partitions and loop devices too, as MLCommons storage
records them, unless ``disk_include``/``disk_exclude`` (regular expressions,
searched in the device name) say otherwise; every interface is recorded.

What a HostSample has no field for travels beside it
(:mod:`collectbus.recording.extras`): the machine's own name, and the
meminfo and vmstat keys no column knows. For this host those keys' values
come from a second read of the file right after the sample's, and only when
the kernel prints such keys (the collector names them at every sample).
A host that fails in a round (timeout, dead session, nothing readable) gets
an error sample for that round, whose one-line message names it; the other
hosts' samples of the round are unaffected. The bus's own backoff is turned
off: the SSH collector paces its reconnects itself and says so in each
failed round.

A round that comes while a host's previous round still runs (a host slower
than the interval, or a connection attempt that runs into its timeout) is
skipped for that host; skipped rounds are counted per host in the result.

Memory is bounded: each host keeps its newest ``max_samples`` samples; older
ones are dropped, counted per host, and the first drop is logged once.

With a ``store``, every collection is also written to it (its HostSample and
its ``collection_log`` entry, one transaction each) from a subscriber of its
own, so a slow database never delays the sampling.

:meth:`Recorder.stop` takes one last sample of each host whose latest sample
is older than half an interval, so that a short run has at least one sample
and the end of a long one is covered.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import shutil
import socket
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Literal

from collectbus.bus import CollectionBus, Result
from collectbus.bus.cache import GOOD_STATUSES
from collectbus.clock import NS_PER_S, Clock, SystemClock
from collectbus.collectors.base import CollectContext
from collectbus.collectors.host.collector import HostCollector
from collectbus.collectors.host.filters import DeviceFilter, FilterConfig
from collectbus.collectors.host.procfile import ProcFile
from collectbus.errors import CollectError, RecordError, StoreError
from collectbus.recording.extras import (
    ExtrasTable,
    SampleExtras,
    meminfo_extras,
    vmstat_extras,
)
from collectbus.recording.mlcommons import ERROR_KEY, SSH_ERROR_KEY
from collectbus.recording.ssh import SshHostCollector, SshOptions, disk_filter_config
from collectbus.recording.timeseries import HostErrors, TimeSeriesData, collection_method
from collectbus.records import HostSample, Record
from collectbus.store import Store

__all__ = ["LOCAL_NAMES", "Recorder", "is_local"]

log = logging.getLogger("collectbus.recording")

#: Host names read through this machine's procfs rather than SSH.
LOCAL_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "local"})

# The bus backoff is replaced by the SSH collector's own (see the module docstring).
_NO_BACKOFF_S = 1e-9
# The result buffer takes the samples of about this many seconds at a time.
_BATCH_S = 1.0
# How much longer than the per-host timeout the bus waits before it gives up on a collection.
_BUS_GRACE_S = 1.0


def is_local(host: str, also: Sequence[str] = ()) -> bool:
    """True for this machine: ``localhost``, its loopback addresses, its host
    name, or one of the names in ``also`` (the configured ``host`` name)."""
    name = socket.gethostname()
    return host in LOCAL_NAMES or host in (name, name.partition(".")[0]) or host in also


class _LocalHost:
    """This machine's HostCollector under the bus name of its host, with each sample's extras."""

    method = "local"

    def __init__(self, host: str, proc_root: str, filters: FilterConfig) -> None:
        self.name = f"host:{host}"
        self.extras = ExtrasTable()
        self._collector = HostCollector(proc_root=proc_root, host=host, filters=filters)
        self._meminfo = ProcFile(f"{proc_root}/meminfo")
        self._vmstat = ProcFile(f"{proc_root}/vmstat")

    def collect(self, ctx: CollectContext) -> list[HostSample]:
        samples = self._collector.collect(ctx)
        unknown = self._collector.unknown_keys
        meminfo = self._unknown(self._meminfo, meminfo_extras) if unknown.get("meminfo") else {}
        vmstat = self._unknown(self._vmstat, vmstat_extras) if unknown.get("vmstat") else {}
        extras = SampleExtras(hostname=socket.gethostname(), meminfo=meminfo, vmstat=vmstat)
        for sample in samples:
            self.extras.put(sample.time_ns, extras)
        return samples

    @staticmethod
    def _unknown(file: ProcFile, parse: Callable[[bytes], dict[str, int]]) -> dict[str, int]:
        try:
            return parse(file.read())
        except CollectError:
            return {}  # the sample's own read of the file failed and says so

    def close(self) -> None:
        self._collector.close()
        self._meminfo.close()
        self._vmstat.close()


class _QuietFailures(logging.Filter):
    """Keeps the bus from logging every failed round of the recorder's collectors.

    The recorder logs the first failure of each host itself, and the recovery;
    every failed round is in the result (an error sample) anyway.
    """

    def __init__(self, collectors: frozenset[str]) -> None:
        super().__init__()
        self.collectors = collectors

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        return not (
            record.levelno >= logging.ERROR
            and isinstance(args, tuple)
            and args
            and args[0] in self.collectors
            and str(record.msg).startswith("collector %s %s:")
        )


class Recorder:
    """Samples every host at every tick between :meth:`start` and :meth:`stop`.

    ``hosts`` defaults to this machine, named ``local_names[0]`` if given, else
    by its host name; ``local_names`` are read through procfs like ``localhost``. ``timeout`` bounds each host's round
    (default: the interval, at least 1 s). ``ssh_config`` is an ``ssh -F``
    file, ``ssh_options`` are extra ``-o`` settings. A Recorder records once:
    starting it again after stop() raises :class:`~collectbus.errors.RecordError`.
    """

    def __init__(
        self,
        hosts: Sequence[str] | None = None,
        *,
        interval: float = 1.0,
        max_samples: int = 3600,
        timeout: float | None = None,
        store: Store | None = None,
        proc_root: str = "/proc",
        remote_proc_root: str = "/proc",
        ssh_command: str = "ssh",
        ssh_config: str | None = None,
        ssh_options: Sequence[str] = (),
        reconnect_backoff_max: float = 60.0,
        local_names: Sequence[str] = (),
        disk_include: Sequence[str] = (),
        disk_exclude: Sequence[str] = (),
        clock: Clock | None = None,
    ) -> None:
        if interval <= 0:
            raise RecordError(f"interval must be positive, got {interval:g} s")
        if max_samples < 1:
            raise RecordError(f"max_samples must be at least 1, got {max_samples}")
        if timeout is not None and timeout <= 0:
            raise RecordError(f"timeout must be positive, got {timeout:g} s")
        self.local_names = tuple(local_names)
        default = [self.local_names[0] if self.local_names else socket.gethostname()]
        names = [h.strip() for h in (hosts if hosts is not None else default)]
        if not names or any(not h or any(c.isspace() for c in h) for h in names):
            raise RecordError(f"hosts: need one or more names without spaces, got {list(names)}")
        self.hosts = tuple(dict.fromkeys(names))
        self.interval = interval
        self.max_samples = max_samples
        self.timeout = timeout if timeout is not None else max(1.0, interval)
        self.clock = clock or SystemClock()
        self._store = store
        self._proc_root = proc_root
        self._remote_proc_root = remote_proc_root
        self._ssh_command = ssh_command
        self._ssh_config = ssh_config
        self._ssh_options = tuple(ssh_options)
        self._backoff_max = reconnect_backoff_max
        self._filters = disk_filter_config(disk_include, disk_exclude)
        try:  # a bad pattern is an error now, not at the first sample
            DeviceFilter(self._filters)
        except re.error as err:
            raise RecordError(
                f"disk_include/disk_exclude: {err.pattern!r} is not a regular expression: {err}"
            ) from err
        self._state: Literal["new", "running", "stopped"] = "new"
        self._lock = threading.Lock()
        self._samples: dict[str, deque[HostSample]] = {
            h: deque(maxlen=max_samples) for h in self.hosts
        }
        # Aligned with _samples: both are extended together, under the lock.
        self._extras: dict[str, deque[SampleExtras]] = {
            h: deque(maxlen=max_samples) for h in self.hosts
        }
        self._collectors: dict[str, _LocalHost | SshHostCollector] = {}
        self._dropped = dict.fromkeys(self.hosts, 0)
        self._errors = {h: HostErrors() for h in self.hosts}
        self._failing: dict[str, bool] = {}
        self._good: dict[str, int] = {}
        self._skipped: dict[str, int] = {}
        self._warned_full = False
        self._bus: CollectionBus | None = None
        self._control_dir: str | None = None
        self._host_of: dict[str, str] = {}
        self._quiet = _QuietFailures(frozenset())
        self.store_errors = 0
        self._start_ns = 0
        self._end_ns = 0
        self.result: TimeSeriesData | None = None

    # ------------------------------------------------------------ lifecycle

    @property
    def is_running(self) -> bool:
        return self._state == "running"

    @property
    def start_time(self) -> int | None:
        """Wall time of start(), in nanoseconds; None before."""
        return self._start_ns if self._state != "new" else None

    @property
    def end_time(self) -> int | None:
        """Wall time of stop(), in nanoseconds; None while recording."""
        return self._end_ns if self._state == "stopped" else None

    @property
    def ssh_control_dir(self) -> str | None:
        """The folder of the ControlMaster sockets, while SSH hosts are recorded."""
        return self._control_dir

    @property
    def methods_by_host(self) -> dict[str, str]:
        """How each host is read: ``local`` (procfs) or ``ssh``."""
        return {h: "local" if is_local(h, self.local_names) else "ssh" for h in self.hosts}

    def start(self) -> None:
        """Start sampling; the first round is now."""
        if self._state == "stopped":
            raise RecordError(
                "this recorder has stopped; a Recorder records once", hint="create a new Recorder"
            )
        if self._state == "running":
            raise RecordError("this recorder is already running")
        bus = CollectionBus(
            host=socket.gethostname(),
            clock=self.clock,
            tiers={"record": self.interval},
            workers=len(self.hosts) + 2,
        )
        for host in self.hosts:
            collector = self._collector(host)
            self._collectors[host] = collector
            self._host_of[collector.name] = host
            bus.add(
                collector,
                tier="record",
                timeout=self.timeout + _BUS_GRACE_S,
                backoff_initial=_NO_BACKOFF_S,
                backoff_max=_NO_BACKOFF_S,
            )
        self._quiet = _QuietFailures(frozenset(self._host_of))
        logging.getLogger("collectbus.bus").addFilter(self._quiet)
        # Woken about once a second, not at every sample (the result buffer
        # has no hurry; stop() drains it): see docs/architecture.md, "The bus".
        bus.subscribe(
            self._on_result,
            name="record",
            maxsize=100_000,
            policy="block",
            batch=max(1, int(_BATCH_S / self.interval)),
            linger=_BATCH_S,
        )
        if self._store is not None:
            bus.subscribe(self._write, name="store", maxsize=100_000, policy="drop_oldest")
        self._bus = bus
        self._start_ns = self.clock.time_ns()
        self._state = "running"
        bus.start()

    def stop(self) -> TimeSeriesData:
        """Take a last sample where needed, stop, and return the recording."""
        if self._state == "new":
            raise RecordError("this recorder was never started")
        if self.result is not None:
            return self.result
        bus = self._bus
        assert bus is not None
        try:
            self._final_round(bus)
        finally:
            self._end_ns = self.clock.time_ns()
            bus.stop(deadline=self.timeout + 2 * _BUS_GRACE_S)
            for row in bus.health().collectors:
                skipped = row.skips + row.backoff_skips + row.missed
                if skipped:
                    self._skipped[self._host_of[row.name]] = skipped
            self._state = "stopped"
            logging.getLogger("collectbus.bus").removeFilter(self._quiet)
            if self._control_dir is not None:
                shutil.rmtree(self._control_dir, ignore_errors=True)
        self.result = self.snapshot()
        return self.result

    def __enter__(self) -> Recorder:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def samples_seen(self, host: str) -> int:
        """Good samples of ``host`` so far, dropped ones included (cheap, for progress).

        The buffer takes samples about once a second: the newest may not be counted yet.
        """
        with self._lock:
            return self._good.get(host, 0)

    def snapshot(self) -> TimeSeriesData:
        """What has been recorded so far (the whole recording once stopped)."""
        with self._lock:
            samples = {h: tuple(d) for h, d in self._samples.items()}
            extras = {h: tuple(d) for h, d in self._extras.items()}
            errors = {h: e for h, e in self._errors.items() if e.count}
            dropped = {h: n for h, n in self._dropped.items() if n}
        end = self._end_ns if self._state == "stopped" else self.clock.time_ns()
        return TimeSeriesData(
            collection_interval_seconds=self.interval,
            start_time_ns=self._start_ns,
            end_time_ns=end,
            samples_by_host=samples,
            collection_method=collection_method([h for h in self.hosts if samples[h]]),
            hosts_requested=self.hosts,
            errors_by_host=errors,
            dropped_by_host=dropped,
            skipped_by_host=dict(self._skipped),
            extras_by_host=extras,
            methods_by_host=self.methods_by_host,
        )

    # ------------------------------------------------------------ internals

    def _collector(self, host: str) -> _LocalHost | SshHostCollector:
        if is_local(host, self.local_names):
            return _LocalHost(host, self._proc_root, self._filters)
        if self._control_dir is None:
            # Short and private: a socket path must stay under 108 bytes.
            self._control_dir = tempfile.mkdtemp(prefix="cb-ssh-", dir="/tmp")
        opts = SshOptions(
            control_dir=self._control_dir,
            command=self._ssh_command,
            config_file=self._ssh_config,
            options=self._ssh_options,
            proc_root=self._remote_proc_root,
        )
        return SshHostCollector(
            host,
            opts,
            timeout_s=self.timeout,
            backoff_initial_s=self.interval,
            backoff_max_s=max(self.interval, self._backoff_max),
            disk_filter=DeviceFilter(self._filters),
            clock=self.clock,
        )

    def _final_round(self, bus: CollectionBus) -> None:
        # The bus's latest results, not the buffer's: it may not have taken
        # the newest batch yet.
        latest = bus.snapshot()
        now = self.clock.time_ns()
        stale = [
            name
            for name in self._host_of
            if name not in latest
            or now - latest[name].event.started_ns > self.interval * NS_PER_S / 2
        ]
        threads = [
            threading.Thread(target=bus.collect_now, args=(name,), name=f"record-final-{name}")
            for name in stale
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def _on_result(self, result: Result) -> None:
        host = self._host_of[result.collector]
        collector = self._collectors[host]
        event = result.event
        if event.status in GOOD_STATUSES and not result.stale:
            samples = [r for r in result.records if isinstance(r, HostSample)]
            extras = [collector.extras.take(s.time_ns) for s in samples]
        else:
            message = (event.error or event.status).strip()
            if not message.startswith(host):
                message = f"{host}: {message}"
            samples = [HostSample(host=host, time_ns=event.started_ns, errors=(message,))]
            key = SSH_ERROR_KEY if collector.method == "ssh" else ERROR_KEY
            extras = [SampleExtras(errors={key: message})]
        failed = event.status not in GOOD_STATUSES or result.stale
        with self._lock:
            was_failing = self._failing.get(host, False)
            self._failing[host] = failed
            if not failed:
                self._good[host] = self._good.get(host, 0) + len(samples)
            if failed:
                count = self._errors[host].count + 1
                self._errors[host] = HostErrors(count=count, last=samples[0].errors[0])
        if failed and not was_failing:
            log.warning("record: %s (error samples until it answers again)", samples[0].errors[0])
        elif was_failing and not failed:
            log.warning("record: %s answers again", host)
        with self._lock:
            kept = self._samples[host]
            full = len(kept) + len(samples) - self.max_samples
            if full > 0:
                self._dropped[host] += min(full, len(kept) + len(samples))
            kept.extend(samples)
            self._extras[host].extend(extras)
            warn = full > 0 and not self._warned_full
            self._warned_full = self._warned_full or warn
        if warn:
            log.warning(
                "record: %s has %d samples (max_samples); the oldest are dropped from now on, "
                "and counted",
                host,
                self.max_samples,
            )

    def _write(self, result: Result) -> None:
        assert self._store is not None
        host = self._host_of[result.collector]
        event = dataclasses.replace(result.event, host=host, source="host")
        batch: tuple[Record, ...] = (event,) if result.stale else (*result.records, event)
        try:
            self._store.write(batch)
        except StoreError as err:
            self.store_errors += 1
            if self.store_errors == 1:
                log.error("record: %s (the result file still gets every sample)", err)
