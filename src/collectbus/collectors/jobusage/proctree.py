"""Jobs' usage summed over their processes, for jobs without a cgroup.

Each process under the procfs root is given a job from its
``/proc/PID/cgroup`` (a path inside a job's cgroup, :func:`.parse.job_in_path`),
else from its environment (``SLURM_JOB_ID``, ``PBS_JOBID``), as Slurm's
``jobacct_gather/linux`` does. What a process belongs to is kept by (pid,
start time), so each process is looked up once, and a pid taken again by
another process is looked up again. Per job, the sums of:

- CPU: ``utime + stime + cutime + cstime`` of ``/proc/PID/stat``: the
  process's own time and that of the children it waited for, so a finished
  child still counts while its parent lives (a child reaped by a process
  outside the job is lost, as it is for ``jobacct_gather/linux``);
- memory: the resident set (``rss``, pages); shared pages count once per
  process, as in ``jobacct_gather/linux``;
- I/O: ``read_bytes`` and ``write_bytes`` of ``/proc/PID/io`` (readable by
  the process's owner and root); unknown for the job if one process's is
  unreadable;
- processes: how many.

A process that exits between the listing and the reading is left out and
counted (the collection's ``processes_gone`` detail); a file that cannot be
read for another reason is reported, once per kind of file per collection.
"""

from __future__ import annotations

import os
from collections.abc import Container
from dataclasses import dataclass, field

from collectbus.collectors.base import CollectContext
from collectbus.collectors.host.procfile import read_once
from collectbus.collectors.jobusage.cgroups import JobKey, Usage
from collectbus.collectors.jobusage.parse import (
    job_from_environ,
    jobs_in_proc_cgroup,
    parse_proc_io,
    parse_proc_stat,
)
from collectbus.errors import CollectError

__all__ = ["ProcessTree", "TreeScan"]

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(slots=True)
class TreeScan:
    """One pass over the processes: usage per job, and what went missing."""

    jobs: dict[JobKey, Usage] = field(default_factory=dict)
    #: Processes that exited between the listing and the reading.
    gone: int = 0
    #: The jobs of ``skip`` that had processes.
    skipped: set[JobKey] = field(default_factory=set)


class _Gone(Exception):
    """The process exited while it was read."""


class ProcessTree:
    """Processes of jobs under ``proc_root``, summed per job by :meth:`scan`."""

    def __init__(self, proc_root: str) -> None:
        self.proc_root = proc_root
        #: pid -> (start time in ticks, its job or None).
        self._known: dict[int, tuple[int, JobKey | None]] = {}

    def _read(self, pid: int, name: str) -> bytes:
        path = os.path.join(self.proc_root, str(pid), name)
        try:
            return read_once(path)
        except CollectError as err:
            if not os.path.isdir(os.path.join(self.proc_root, str(pid))):
                raise _Gone from err
            raise

    def _job_of(self, pid: int) -> JobKey | None:
        try:
            job = jobs_in_proc_cgroup(self._read(pid, "cgroup"))
        except CollectError:
            job = None  # no cgroup file (a procfs without it): the environment decides
        if job is not None:
            return job.scheduler, job.job_id
        try:
            return job_from_environ(self._read(pid, "environ"))
        except CollectError:
            return None  # another user's process, unless run as root: not a job we can see

    def scan(
        self, ctx: CollectContext, replaced: list[str], skip: Container[JobKey] = ()
    ) -> TreeScan:
        """Sum the processes of every job not in ``skip``.

        CollectError when the procfs root cannot be listed.
        """
        try:
            names = os.listdir(self.proc_root)
        except OSError as err:
            raise CollectError(self.proc_root, f"cannot list: {err.strerror or err}") from err
        out = TreeScan()
        known: dict[int, tuple[int, JobKey | None]] = {}
        reported: set[str] = set()
        io_unknown: set[JobKey] = set()
        for name in names:
            if not (name.isdigit() and name.isascii()):
                continue
            pid = int(name)
            try:
                stat_path = os.path.join(self.proc_root, name, "stat")
                stat = parse_proc_stat(self._read(pid, "stat"), stat_path, replaced)
                before = self._known.get(pid)
                job = (
                    before[1]
                    if before is not None and before[0] == stat.start_ticks
                    else self._job_of(pid)
                )
                known[pid] = (stat.start_ticks, job)
                if job is None:
                    continue
                if job in skip:
                    out.skipped.add(job)
                    continue
                io: tuple[int | None, int | None] | None
                try:
                    io_path = os.path.join(self.proc_root, name, "io")
                    io = parse_proc_io(self._read(pid, "io"), io_path, replaced)
                except _Gone:
                    raise
                except CollectError as err:
                    io = None
                    if "io" not in reported:
                        reported.add("io")
                        ctx.report(err)
            except _Gone:
                out.gone += 1
                continue
            except CollectError as err:
                if "stat" not in reported:
                    reported.add("stat")
                    ctx.report(err)
                continue
            usage = out.jobs.get(job)
            if usage is None:
                usage = out.jobs[job] = Usage(
                    cpu_seconds=0.0, mem_bytes=0, read_bytes=0, write_bytes=0, processes=0
                )
            usage.processes = (usage.processes or 0) + 1
            usage.cpu_seconds = _add_float(usage.cpu_seconds, stat.cpu_ticks, CLOCK_TICKS)
            usage.mem_bytes = _add(
                usage.mem_bytes, None if stat.rss_pages is None else stat.rss_pages * PAGE_SIZE
            )
            if io is None:
                io_unknown.add(job)
            else:
                usage.read_bytes = _add(usage.read_bytes, io[0])
                usage.write_bytes = _add(usage.write_bytes, io[1])
        for job in io_unknown:
            usage = out.jobs[job]
            usage.read_bytes = usage.write_bytes = None
        self._known = known
        return out


def _add(total: int | None, value: int | None) -> int | None:
    """A sum that is None once a part is unknown or it passes ``2**63 - 1``."""
    if total is None or value is None:
        return None
    total += value
    return total if total < 2**63 else None


def _add_float(total: float | None, ticks: int | None, per_second: int) -> float | None:
    if total is None or ticks is None:
        return None
    return total + ticks / per_second
