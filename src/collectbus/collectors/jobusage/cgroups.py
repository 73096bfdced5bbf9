"""Jobs' cgroups: found under a cgroup mount, and read (v1 and v2).

:func:`find_job_cgroups` lists the folders of every job under each
hierarchy (one per controller on cgroup v1, one on v2, both on a hybrid
host); :func:`read_job_cgroups` reads one job's folders into a
:class:`Usage`. The files, by what they give:

============  ======================================  ====================================
value         cgroup v1                               cgroup v2
============  ======================================  ====================================
CPU time      ``cpuacct.usage`` (ns)                  ``cpu.stat`` ``usage_usec``
memory now    ``memory.usage_in_bytes``               ``memory.current``
memory peak   ``memory.max_usage_in_bytes``           ``memory.peak`` (Linux 5.19)
I/O bytes     ``blkio.throttle.io_service_bytes``     ``io.stat`` ``rbytes``, ``wbytes``
processes     ``cgroup.procs`` of the job's folder and its sub-folders (steps, tasks);
              ``pids.current`` where no ``cgroup.procs`` could be read
============  ======================================  ====================================

A job folder that is gone when read means the job ended meanwhile:
:class:`Vanished`, and the collector leaves the job out. A file that cannot
be read or parsed is reported, its value None, and the rest is read. Reads are
bounded (:mod:`collectbus.collectors.host.procfile`).
"""

from __future__ import annotations

import glob
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from collectbus.collectors.base import CollectContext
from collectbus.collectors.host.cgroup import parse_cpu_stat, parse_io_stat, parse_single_value
from collectbus.collectors.host.procfile import read_once
from collectbus.collectors.jobusage.parse import job_in_path, parse_blkio_bytes, parse_pids
from collectbus.errors import CollectError

__all__ = ["Usage", "Vanished", "find_job_cgroups", "hierarchy_roots", "read_job_cgroups"]

T = TypeVar("T")

#: Where jobs' folders are, below each hierarchy's root (see :mod:`.parse`).
JOB_PATTERNS = (
    "slurm*/uid_*/job_*",
    "system.slice/slurmstepd.scope/job_*",
    "slurmstepd.scope/job_*",
    "pbs_jobs.service/jobid/*",
    "pbs_jobs.service/jobs/*",
)

_BLKIO_FILES = ("blkio.throttle.io_service_bytes_recursive", "blkio.throttle.io_service_bytes")

JobKey = tuple[str, str]


@dataclass(slots=True)
class Usage:
    """One job's usage on this node, as read so far (None: not known): the
    value fields of :class:`~collectbus.records.JobUsageSample`, by name."""

    cpu_seconds: float | None = None
    mem_bytes: int | None = None
    mem_peak_bytes: int | None = None
    read_bytes: int | None = None
    write_bytes: int | None = None
    processes: int | None = None


class Vanished(Exception):
    """A job's cgroup folder went away while it was read: the job ended."""


def hierarchy_roots(cgroup_root: str) -> list[str]:
    """The roots of the cgroup hierarchies mounted at ``cgroup_root``.

    ``cgroup_root`` itself on a cgroup v2 host (it holds ``cgroup.controllers``);
    else each folder in it (the v1 controllers, and ``unified`` on a hybrid
    host), a controller mounted under two names (``cpu`` and ``cpuacct`` as
    links to ``cpu,cpuacct``) once. OSError when ``cgroup_root`` cannot be listed.
    """
    if os.path.exists(os.path.join(cgroup_root, "cgroup.controllers")):
        return [cgroup_root]
    roots: list[str] = []
    seen: set[str] = set()
    for name in sorted(os.listdir(cgroup_root)):
        path = os.path.join(cgroup_root, name)
        real = os.path.realpath(path)
        if real not in seen and os.path.isdir(path):
            seen.add(real)
            roots.append(path)
    return roots


def find_job_cgroups(cgroup_root: str) -> dict[JobKey, list[str]]:
    """Every job's cgroup folders, by (scheduler, job id), in hierarchy order."""
    found: dict[JobKey, list[str]] = {}
    for root in hierarchy_roots(cgroup_root):
        escaped = glob.escape(root)
        for pattern in JOB_PATTERNS:
            for path in sorted(glob.glob(os.path.join(escaped, pattern))):
                relative = "/" + os.path.relpath(path, root).replace(os.sep, "/")
                job = job_in_path(relative)
                if job is not None and job.path == relative and os.path.isdir(path):
                    found.setdefault((job.scheduler, job.job_id), []).append(path)
    return found


class _Reader:
    """Reads the files of one job's folders; a failure is reported, its value None."""

    def __init__(self, ctx: CollectContext, replaced: list[str]) -> None:
        self.ctx = ctx
        self.replaced = replaced

    def read(self, folder: str, name: str, parse: Callable[[bytes, str, list[str]], T]) -> T | None:
        path = os.path.join(folder, name)
        try:
            return parse(read_once(path), path, self.replaced)
        except CollectError as err:
            if not os.path.isdir(folder):
                raise Vanished(folder) from err
            self.ctx.report(err)
            return None


def _single(data: bytes, source: str, replaced: list[str]) -> int | None:
    return parse_single_value(data, source, replaced)


def _pid_list(data: bytes, source: str, _replaced: list[str]) -> list[int]:
    return parse_pids(data, source)


def read_job_cgroups(folders: list[str], ctx: CollectContext, replaced: list[str]) -> Usage:
    """One job's usage from its folders (one per hierarchy); :class:`Vanished`
    when one of them is gone. Each value is taken from the first folder that
    has its file."""
    reader = _Reader(ctx, replaced)
    usage = Usage()
    cpu_read = mem_read = peak_read = io_read = False
    pids: set[int] = set()
    procs_read = False
    pids_current: int | None = None
    for folder in folders:
        try:
            names = set(os.listdir(folder))
        except OSError as err:
            raise Vanished(folder) from err
        if not cpu_read and "cpuacct.usage" in names:
            cpu_read = True
            ns = reader.read(folder, "cpuacct.usage", _single)
            usage.cpu_seconds = None if ns is None else ns / 1e9
        elif not cpu_read and "cpu.stat" in names:
            cpu_read = True
            stat = reader.read(folder, "cpu.stat", parse_cpu_stat)
            usec = None if stat is None else stat.get(b"usage_usec")
            usage.cpu_seconds = None if usec is None else usec / 1e6
        current = _first(names, "memory.usage_in_bytes", "memory.current")
        if not mem_read and current is not None:
            mem_read = True
            usage.mem_bytes = reader.read(folder, current, _single)
        peak = _first(names, "memory.max_usage_in_bytes", "memory.peak")
        if not peak_read and peak is not None:
            peak_read = True
            usage.mem_peak_bytes = reader.read(folder, peak, _single)
        if not io_read:
            blkio = _first(names, *_BLKIO_FILES)
            if blkio is not None:
                io_read = True
                pair = reader.read(folder, blkio, parse_blkio_bytes)
                usage.read_bytes, usage.write_bytes = pair if pair is not None else (None, None)
            elif "io.stat" in names:
                io_read = True
                io = reader.read(folder, "io.stat", parse_io_stat)
                if io is not None:
                    usage.read_bytes, usage.write_bytes = io.get(b"rbytes"), io.get(b"wbytes")
        if pids_current is None and "pids.current" in names:
            pids_current = reader.read(folder, "pids.current", _single)
        if "cgroup.procs" in names:
            found = _processes(folder, reader)
            if found is not None:
                procs_read = True
                pids |= found
    usage.processes = len(pids) if procs_read else pids_current
    return usage


def _first(names: set[str], *candidates: str) -> str | None:
    """The first of ``candidates`` among ``names``."""
    return next((c for c in candidates if c in names), None)


def _processes(folder: str, reader: _Reader) -> set[int] | None:
    """The processes of ``folder`` and its sub-folders (``cgroup.procs`` is
    not recursive); None when not one list could be read. A sub-folder that
    goes away meanwhile (a step ended) is skipped; the job's own folder
    going away is :class:`Vanished`."""
    pids: set[int] = set()
    read_any = False
    for here, _dirs, files in os.walk(folder):
        if "cgroup.procs" not in files:
            continue
        try:
            listed = reader.read(here, "cgroup.procs", _pid_list)
        except Vanished:
            if here == folder:
                raise
            continue
        if listed is not None:
            read_any = True
            pids.update(listed)
    return pids if read_any else None
