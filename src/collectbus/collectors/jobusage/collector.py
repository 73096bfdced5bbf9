"""The job usage collector: what each batch job on this node uses, once per tick.

One :class:`~collectbus.records.JobUsageSample` per job running on the node:
from the job's cgroup where it has one (:mod:`.cgroups`), else summed over
its processes (:mod:`.proctree`). ``mode`` chooses: ``auto`` (cgroup, else
process tree, job by job), ``cgroup`` or ``proctree`` only.

What goes wrong is said in one line naming its source, and the rest goes on:

- a job whose cgroup goes away while it is read ended meanwhile: it is left
  out, and the collection's ``jobs_ended`` detail names it; so is a job read
  from its cgroup before whose cgroup is gone while some of its processes
  are still there (in mode ``auto`` they are not summed instead: the few
  left would read as a drop of its CPU time);
- a process that exits between the listing and the reading is left out and
  counted (``processes_gone``);
- a file that cannot be read or parsed is reported (the collection is
  ``partial``) and its value is None;
- a number out of range is None, named in ``out_of_range_fields``
  (:mod:`collectbus.values`).

Only when the cgroup mount (mode ``cgroup``) or the procfs (mode ``proctree``)
cannot be listed at all does the collection fail; in mode ``auto`` either is
reported and the other still read.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Literal

from collectbus.collectors.base import CollectContext
from collectbus.collectors.jobusage.cgroups import (
    JobKey,
    Usage,
    Vanished,
    find_job_cgroups,
    read_job_cgroups,
)
from collectbus.collectors.jobusage.proctree import ProcessTree, TreeScan
from collectbus.errors import CollectError
from collectbus.records import JobUsageSample
from collectbus.values import out_of_range_details

__all__ = ["JobUsageCollector", "JobUsageMode"]

JobUsageMode = Literal["auto", "cgroup", "proctree"]


class JobUsageCollector:
    """Per-job usage of this node's batch jobs.

    ``cluster`` is the name the samples carry (the scheduler's cluster, as
    the jobs collectors name it). ``proc_root`` and ``cgroup_root`` are where
    procfs and the cgroup hierarchies are mounted (a recorded tree in tests).
    ``host`` overrides the host name the bus gives in the context.
    """

    name = "jobusage"

    def __init__(
        self,
        cluster: str,
        *,
        proc_root: str | os.PathLike[str] = "/proc",
        cgroup_root: str | os.PathLike[str] = "/sys/fs/cgroup",
        host: str | None = None,
        mode: JobUsageMode = "auto",
    ) -> None:
        if mode not in ("auto", "cgroup", "proctree"):
            raise ValueError(f"mode must be auto, cgroup or proctree, not {mode!r}")
        self.cluster = cluster
        self.cgroup_root = os.fspath(cgroup_root)
        self.host = host
        self.mode = mode
        self._tree = ProcessTree(os.fspath(proc_root))
        #: The largest memory sum seen per job of the process tree.
        self._peaks: dict[JobKey, int] = {}
        #: Jobs read from their cgroup, while they have processes.
        self._had_cgroup: set[JobKey] = set()

    def collect(self, ctx: CollectContext) -> list[JobUsageSample]:
        time_ns = ctx.clock.time_ns()
        replaced: list[str] = []
        found: dict[JobKey, tuple[str, Usage]] = {}
        ended: dict[JobKey, str] = {}
        if self.mode != "proctree":
            for job, folders in self._job_cgroups(ctx).items():
                try:
                    found[job] = ("cgroup", read_job_cgroups(folders, ctx, replaced))
                except Vanished as gone:
                    ended[job] = f"{gone.args[0]} went away"
        if self.mode != "cgroup":
            # Jobs read from a cgroup are not summed again from their
            # processes. Nor is a job read from its cgroup before whose cgroup
            # is gone but some of its processes not yet: it is ending, and the
            # few processes left would read as a sudden drop of its CPU time.
            skip = set(found) | set(ended) | self._had_cgroup
            try:
                scan = self._tree.scan(ctx, replaced, skip)
            except CollectError as err:
                if self.mode == "proctree":
                    raise
                ctx.report(err)  # the jobs of their cgroups are still worth keeping
                scan = TreeScan()
            peaks = {}
            for job, usage in scan.jobs.items():
                peak = max(self._peaks.get(job, 0), usage.mem_bytes or 0)
                peaks[job] = usage.mem_peak_bytes = peak
                found[job] = ("proctree", usage)
            self._peaks = peaks
            ending = ((self._had_cgroup | set(ended)) & scan.skipped) - set(found)
            for job in sorted(ending):
                ended.setdefault(job, "its cgroup is gone, some processes not yet")
            self._had_cgroup = {j for j, (source, _) in found.items() if source == "cgroup"}
            self._had_cgroup |= ending
            if scan.gone:
                ctx.detail("processes_gone", str(scan.gone))
        if ended:
            ctx.detail(
                "jobs_ended",
                "; ".join(f"{s} job {j}: {why}" for (s, j), why in sorted(ended.items())),
            )
        for key, value in out_of_range_details(replaced):
            ctx.detail(key, value)
        ctx.detail("jobs", str(len(found)))
        host = self.host or ctx.host
        return [
            JobUsageSample(
                cluster=self.cluster,
                job_id=job_id,
                host=host,
                time_ns=time_ns,
                source=source,
                **dataclasses.asdict(usage),
            )
            for (_, job_id), (source, usage) in sorted(found.items())
        ]

    def _job_cgroups(self, ctx: CollectContext) -> dict[JobKey, list[str]]:
        try:
            return find_job_cgroups(self.cgroup_root)
        except OSError as err:
            error = CollectError(self.cgroup_root, f"cannot list: {err.strerror or err}")
            if self.mode == "cgroup":
                raise error from err
            if os.path.exists(self.cgroup_root):
                ctx.report(error)
            return {}  # no cgroup mount: every job from its processes
