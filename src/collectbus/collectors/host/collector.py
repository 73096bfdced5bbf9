"""The Linux host collector: one :class:`~collectbus.records.HostSample` per collection.

It reads six files under a procfs root: ``stat``, ``meminfo``, ``vmstat``,
``diskstats``, ``net/dev`` and ``loadavg``; then ``uptime``, the three files
of ``pressure/`` when the kernel has them (PSI, Linux 4.20), and, in a
container, the cgroup v2 files of its own cgroup (:mod:`.cgroupfiles`).
Disks and interfaces go through :mod:`.filters`. The files stay open between
collections and are read with ``os.pread`` from offset 0, which makes the
kernel generate them afresh, then at increasing offsets until the end of the
file (see :meth:`ProcFile.read` for when a short read is the end). The read
buffer grows to the size of the file. Parsing goes through the cached layouts of
:mod:`.layouts` and :mod:`.keyvalues`, which give the same records as the pure parsers of
:mod:`.parse`.

A file that cannot be read or parsed is reported to the context, named in the
sample's ``errors``, and left empty in the sample; the other files are still
collected. Only when every file fails does ``collect`` raise. Reads are
bounded (:mod:`.procfile`): a FIFO, a device or an endless file is refused
like an unreadable one.

A number out of range (:mod:`collectbus.values`: a counter past
``2**63 - 1`` or negative, a NaN or infinite float) is None in the sample,
and the collection's details name it (``out_of_range``, ``out_of_range_fields``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Collection, Mapping
from functools import partial
from typing import Any, Generic, Literal, TypeVar

from collectbus.collectors.base import CollectContext
from collectbus.collectors.host.cgroup import cgroup_dir, in_container, own_cgroup_path
from collectbus.collectors.host.cgroupfiles import CgroupReader
from collectbus.collectors.host.filters import DeviceFilter, FilterConfig
from collectbus.collectors.host.keyvalues import MeminfoParser, VmstatParser
from collectbus.collectors.host.layouts import (
    CachedParser,
    DiskstatsParser,
    NetDevParser,
    StatParser,
)
from collectbus.collectors.host.parse import parse_loadavg
from collectbus.collectors.host.parse_system import PSI_RESOURCES, parse_pressure, parse_uptime
from collectbus.collectors.host.procfile import LONGEST_RECORD, ProcFile, read_once
from collectbus.errors import CollectError
from collectbus.records import DiskRow, HostSample, NetRow, PsiRow
from collectbus.values import out_of_range_details

__all__ = ["FAMILIES", "SOURCES", "CgroupMode", "HostCollector", "ProcFile", "families_name"]

log = logging.getLogger("collectbus.collectors.host")

CgroupMode = Literal["auto", "on", "off"]

T = TypeVar("T")

#: The files a sample is read from, relative to the procfs root.
SOURCES = ("stat", "meminfo", "vmstat", "diskstats", "net/dev", "loadavg")

#: The families of a sample, each read from its own files: the first six from
#: :data:`SOURCES` in that order (``cpu`` is stat's cpu lines and its totals),
#: then uptime, ``pressure/*`` and the cgroup v2 files.
FAMILIES = ("cpu", "mem", "vmstat", "disk", "net", "load", "uptime", "psi", "cgroup")

# vmstat's records are short "name value" lines (see procfile.py).
_LONGEST_RECORD_OF = {"vmstat": 128}


class HostCollector:
    """Collects the host's /proc counters, PSI, uptime and (in a container) its cgroup.

    ``proc_root`` is the procfs to read (the config key ``proc_root``; a
    fixture tree in tests, ``/host/proc`` in a container). ``host`` overrides
    the host name the bus gives in the context. ``sys_root`` is the sysfs the
    disk filter asks whether a device is a partition. ``cgroup``: ``auto``
    reads the cgroup v2 files when running in a container, ``on`` always,
    ``off`` never; ``cgroup_root`` is where cgroup v2 is mounted.

    ``families`` (default: all of :data:`FAMILIES`) chooses what a sample
    holds; only their files are opened and read, and the others are empty in
    the sample. Several collectors, each with its own families on its own
    interval, schedule the families apart (docs/architecture.md, "The bus").
    The name is ``host`` with every family, else ``host-`` and the families
    joined by ``+`` (``host-mem+vmstat``), unless ``name`` is given.
    """

    name = "host"

    def __init__(
        self,
        proc_root: str | os.PathLike[str] = "/proc",
        host: str | None = None,
        *,
        sys_root: str | os.PathLike[str] = "/sys",
        filters: FilterConfig | None = None,
        cgroup: CgroupMode = "auto",
        cgroup_root: str | os.PathLike[str] = "/sys/fs/cgroup",
        env: Mapping[str, str] | None = None,
        families: Collection[str] | None = None,
        name: str | None = None,
    ) -> None:
        want = frozenset(FAMILIES if families is None else families)
        unknown = sorted(want.difference(FAMILIES))
        if unknown or not want:
            raise ValueError(
                f"host: unknown families {', '.join(unknown) or '(none given)'}"
                f" (known: {', '.join(FAMILIES)})"
            )
        self.families = want
        self.name = name or families_name(want)
        self._core = [f in want for f in FAMILIES[: len(SOURCES)]]
        self.proc_root = os.fspath(proc_root)
        self.host = host
        paths = [os.path.join(self.proc_root, source) for source in SOURCES]
        self._files = [
            ProcFile(path, longest_record=_LONGEST_RECORD_OF.get(source, LONGEST_RECORD))
            for source, path in zip(SOURCES, paths, strict=True)
        ]
        self.filter = DeviceFilter(filters or FilterConfig(), os.fspath(sys_root))
        self._disk_keep: dict[tuple[str, int | None, int | None], bool] = {}
        self._net_keep: dict[str, bool] = {}
        self._stat = StatParser(paths[0])
        self._meminfo = MeminfoParser(paths[1])
        self._vmstat = VmstatParser(paths[2])
        self._diskstats = DiskstatsParser(paths[3], self._select_disks)
        self._net_dev = NetDevParser(paths[4], self._select_ifaces)
        self._cached: tuple[CachedParser[Any, Any], ...] = (
            self._stat,
            self._meminfo,
            self._vmstat,
            self._diskstats,
            self._net_dev,
        )
        # The names of the values a collection replaced by None; cleared by each
        # collection, filled by the parsers of the files read without a layout.
        self._replaced: list[str] = []
        self._loadavg = partial(parse_loadavg, source=paths[5], replaced=self._replaced)
        # uptime and PSI are read when they exist at the start (a recorded
        # tree may lack them); once found, a failure to read them is reported.
        uptime = os.path.join(self.proc_root, "uptime")
        self._uptime_file = (
            ProcFile(uptime) if "uptime" in want and os.path.exists(uptime) else None
        )
        self._uptime = partial(parse_uptime, source=uptime, replaced=self._replaced)
        # PSI needs Linux 4.20 with CONFIG_PSI; without the directory there is nothing to read.
        pressure = os.path.join(self.proc_root, "pressure")
        self._psi = [
            (ProcFile(os.path.join(pressure, r)), r)
            for r in (PSI_RESOURCES if "psi" in want and os.path.isdir(pressure) else ())
        ]
        self._psi_parsers = [
            (file, _Unchanged(partial(_pressure, resource=resource, source=file.path)))
            for file, resource in self._psi
        ]
        self._cgroup = self._cgroup_reader(
            cgroup if "cgroup" in want else "off",
            os.fspath(cgroup_root),
            os.environ if env is None else env,
        )
        self._unknown_keys: dict[str, tuple[str, ...]] = {}

    def _cgroup_reader(
        self, mode: CgroupMode, cgroup_root: str, env: Mapping[str, str]
    ) -> CgroupReader | None:
        if mode == "off":
            return None
        try:
            self_cgroup: bytes | None = read_once(os.path.join(self.proc_root, "self", "cgroup"))
        except CollectError:
            self_cgroup = None
        if mode == "auto" and not in_container(self_cgroup, env, os.path.exists):
            return None
        directory = cgroup_dir(cgroup_root, self_cgroup, limits_only=mode == "auto")
        if directory is None:
            if mode == "on":
                # Read anyway: each sample then names the missing files.
                directory = cgroup_root
            else:
                log.info("host: in a container, but no cgroup v2 of its own under %s", cgroup_root)
                return None
        name = (own_cgroup_path(self_cgroup) if self_cgroup else None) or "/"
        return CgroupReader(directory, name, only_existing=mode == "auto")

    def _select_disks(self, rows: tuple[DiskRow, ...]) -> list[int]:
        known = self._disk_keep
        keep = self.filter.keep_disk
        kept = []
        for i, row in enumerate(rows):
            key = (row.device, row.major, row.minor)
            decision = known.get(key)
            if decision is None:
                decision = known[key] = keep(*key)
            if decision:
                kept.append(i)
        return self.filter.cap("disk", kept)

    def _select_ifaces(self, rows: tuple[NetRow, ...]) -> list[int]:
        known = self._net_keep
        kept = []
        for i, row in enumerate(rows):
            decision = known.get(row.iface)
            if decision is None:
                decision = known[row.iface] = self.filter.keep_net(row.iface)
            if decision:
                kept.append(i)
        return self.filter.cap("net", kept)

    @property
    def sources(self) -> list[str]:
        """Every file read per sample, in order (the cgroup files when a cgroup is read)."""
        files = [f.path for f, read in zip(self._files, self._core, strict=True) if read]
        if self._uptime_file is not None:
            files.append(self._uptime_file.path)
        files += [f.path for f, _ in self._psi]
        if self._cgroup is not None:
            files += self._cgroup.paths
        return files

    @property
    def cgroup_dir(self) -> str | None:
        """The cgroup directory read each sample, or None."""
        return self._cgroup.directory if self._cgroup is not None else None

    @property
    def unknown_keys(self) -> dict[str, tuple[str, ...]]:
        """Keys of meminfo and vmstat, at the last collection, that no column knows."""
        return dict(self._unknown_keys)

    @property
    def full_parses(self) -> dict[str, int]:
        """Reads per file that took the pure parser rather than a learnt layout.

        One per file after the first collection; each later one is a layout
        change (hot-plug) or a file the fast path cannot describe.
        """
        return {
            "stat": self._stat.full_parses,
            "meminfo": self._meminfo.full_parses,
            "vmstat": self._vmstat.full_parses,
            "diskstats": self._diskstats.full_parses,
            "net/dev": self._net_dev.full_parses,
        }

    def collect(self, ctx: CollectContext) -> list[HostSample]:
        """Read the files once; return exactly one sample."""
        time_ns = ctx.clock.time_ns()
        errors: list[str] = []
        stat_file, mem_file, vm_file, disk_file, net_file, load_file = self._files
        cpu_on, mem_on, vm_on, disk_on, net_on, load_on = self._core
        stat = _read(stat_file, self._stat.parse, ctx, errors) if cpu_on else None
        mem = _read(mem_file, self._meminfo.parse, ctx, errors) if mem_on else None
        vm = _read(vm_file, self._vmstat.parse, ctx, errors) if vm_on else None
        disk = _read(disk_file, self._diskstats.parse, ctx, errors) if disk_on else None
        net = _read(net_file, self._net_dev.parse, ctx, errors) if net_on else None
        replaced = self._replaced
        replaced.clear()
        load = _read(load_file, self._loadavg, ctx, errors) if load_on else None
        if errors and len(errors) == sum(self._core):
            count = len(errors)
            raise CollectError(
                self.proc_root,
                f"none of the {count} file{'s' if count > 1 else ''} could be read; {errors[0]}",
            )
        for result, parser in zip((stat, mem, vm, disk, net), self._cached, strict=True):
            if parser.replaced and result is not None:  # read and parsed now: this read's names
                replaced += parser.replaced
        uptime = (
            _read(self._uptime_file, self._uptime, ctx, errors)
            if self._uptime_file is not None
            else None
        )
        psi: list[PsiRow] = []
        for file, parse_psi in self._psi_parsers:
            parsed = _read(file, parse_psi, ctx, errors)
            if parsed is not None:
                psi.append(parsed[0])
                if parsed[1]:
                    replaced += parsed[1]
        cgroup = self._cgroup.read(ctx, errors, replaced) if self._cgroup is not None else None
        if replaced:
            for key, value in out_of_range_details(replaced):
                ctx.detail(key, value)
        if mem is not None:
            self._unknown_keys["meminfo"] = mem.unknown_keys
        if vm is not None:
            self._unknown_keys["vmstat"] = vm.unknown_keys
        return [
            HostSample(
                host=self.host or ctx.host,
                time_ns=time_ns,
                cpu=stat[0] if stat is not None else (),
                stat=stat[1] if stat is not None else None,
                mem=mem.values if mem is not None else None,
                vmstat=vm.values if vm is not None else None,
                disk=disk or (),
                net=net or (),
                load=load,
                errors=tuple(errors),
                psi=tuple(psi),
                uptime=uptime,
                cgroup=cgroup,
            )
        ]

    def close(self) -> None:
        """Close the open files; a later collect opens them again."""
        for file in (*self._files, *(f for f, _ in self._psi)):
            file.close()
        if self._uptime_file is not None:
            self._uptime_file.close()
        if self._cgroup is not None:
            self._cgroup.close()


def families_name(families: Collection[str]) -> str:
    """The name of a host collector of ``families``: ``host`` for all of them,
    else ``host-`` and the families in :data:`FAMILIES` order joined by ``+``."""
    chosen = [f for f in FAMILIES if f in families]
    return "host" if len(chosen) == len(FAMILIES) else "host-" + "+".join(chosen)


class _Unchanged(Generic[T]):
    """A parser that returns its last row again when the bytes did not change.

    A PSI file's averages move every 2 s (``PSI_FREQ``, kernel/sched/psi.c)
    and its totals only while tasks stall, so on most reads the bytes are
    those of the last read: comparing them costs far less than parsing.
    """

    __slots__ = ("_data", "_parse", "_row")

    def __init__(self, parse: Callable[[bytes], T]) -> None:
        self._parse = parse
        self._data = b""
        self._row: T | None = None

    def __call__(self, data: bytes) -> T:
        row = self._row
        if row is not None and data == self._data:
            return row
        row = self._parse(data)
        self._data, self._row = data, row
        return row


def _pressure(data: bytes, resource: str, source: str) -> tuple[PsiRow, tuple[str, ...]]:
    """A PSI row and the names of its values replaced by None (kept together by _Unchanged)."""
    replaced: list[str] = []
    row = parse_pressure(data, resource, source, replaced=replaced)
    return row, tuple(replaced)


def _read(
    file: ProcFile, parse: Callable[[bytes], T], ctx: CollectContext, errors: list[str]
) -> T | None:
    """Read and parse one file; a failure is reported and gives None."""
    try:
        return parse(file.read())
    except CollectError as err:
        ctx.report(err)
        errors.append(str(err))
        return None
