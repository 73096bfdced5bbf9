"""The job usage collector on recorded and hand-written cgroup trees
(tests/data/cgroup/README.md), and what it does when they break."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

import collectbus.collectors.jobusage.cgroups as cgroups_module
import collectbus.collectors.jobusage.collector as collector_module
import collectbus.collectors.jobusage.proctree as proctree_module
from collectbus.collectors.base import CollectContext
from collectbus.collectors.jobusage.collector import JobUsageCollector, JobUsageMode
from collectbus.errors import CollectError
from collectbus.plugins import load_collector
from collectbus.records import JobUsageSample

DATA = Path(__file__).resolve().parents[3] / "data" / "cgroup"
SLURM_V1 = DATA / "slurm-v1-job"
V1_JOB = "sys/fs/cgroup/{}/slurm_localhost/uid_0/job_2"
TICK = 1 / os.sysconf("SC_CLK_TCK")


def _copy(name: str, tmp_path: Path) -> Path:
    dest = tmp_path / name
    shutil.copytree(DATA / name, dest, symlinks=True)
    return dest


def _collect(
    tree: Path, mode: JobUsageMode = "auto", proc: Path | None = None
) -> tuple[list[JobUsageSample], CollectContext]:
    collector = JobUsageCollector(
        "testcluster",
        proc_root=proc if proc is not None else tree / "proc",
        cgroup_root=tree / "sys/fs/cgroup",
        mode=mode,
    )
    ctx = CollectContext(host="node01")
    return collector.collect(ctx), ctx


def _number(path: Path) -> int:
    return int(path.read_text())


def test_registered_as_a_collector() -> None:
    assert load_collector("jobusage") is JobUsageCollector


def test_recorded_slurm_v1_job_from_its_cgroup() -> None:
    (sample,), ctx = _collect(SLURM_V1, "cgroup")
    assert ctx.problems == []
    cpu = _number(SLURM_V1 / V1_JOB.format("cpuacct") / "cpuacct.usage")
    memory = SLURM_V1 / V1_JOB.format("memory")
    assert sample.cluster == "testcluster"
    assert sample.host == "node01"
    assert (sample.job_id, sample.source) == ("2", "cgroup")
    assert sample.cpu_seconds == pytest.approx(cpu / 1e9)
    assert sample.mem_bytes == _number(memory / "memory.usage_in_bytes")
    assert sample.mem_peak_bytes == _number(memory / "memory.max_usage_in_bytes")
    # Slurm makes no blkio cgroup: unknown, not zero.
    assert (sample.read_bytes, sample.write_bytes) == (None, None)
    # slurmstepd (in freezer's job folder), the batch script and its sleep.
    assert sample.processes == len(list((SLURM_V1 / "proc").iterdir())) == 3
    assert ("jobs", "1") in ctx.details


def test_recorded_slurm_v1_process_tree_agrees_with_the_cgroup() -> None:
    (from_cgroup,), _ = _collect(SLURM_V1, "cgroup")
    (from_tree,), ctx = _collect(SLURM_V1, "proctree")
    assert ctx.problems == []
    assert from_tree.source == "proctree"
    assert from_tree.job_id == from_cgroup.job_id
    assert from_cgroup.cpu_seconds is not None
    assert from_tree.cpu_seconds is not None
    assert from_tree.cpu_seconds == pytest.approx(from_cgroup.cpu_seconds, abs=3 * TICK)
    assert from_tree.processes == from_cgroup.processes
    # Shared pages count in each process's RSS, not in the cgroup's charge.
    assert from_tree.mem_bytes is not None
    assert from_tree.mem_bytes > 0
    assert from_tree.mem_peak_bytes == from_tree.mem_bytes
    assert from_tree.read_bytes is not None
    assert from_tree.write_bytes is not None


def test_auto_takes_the_cgroup_and_does_not_count_the_processes_again() -> None:
    samples, ctx = _collect(SLURM_V1, "auto")
    assert [(s.job_id, s.source) for s in samples] == [("2", "cgroup")]
    assert ctx.problems == []


def test_slurm_cgroup_v2_job() -> None:
    tree = DATA / "slurm-v2-job"
    (sample,), ctx = _collect(tree, "cgroup")
    assert ctx.problems == []
    assert (sample.job_id, sample.cpu_seconds) == ("4242", pytest.approx(61.234567))
    assert (sample.mem_bytes, sample.mem_peak_bytes) == (524288000, 536870912)
    assert (sample.read_bytes, sample.write_bytes) == (1048576 + 4096, 2097152)
    # cgroup.procs of every step and task, not slurmstepd.scope/system's.
    assert sample.processes == 5


def test_pbs_cgroup_v1_jobs_with_comounted_controllers() -> None:
    samples, ctx = _collect(DATA / "pbs-v1-job", "cgroup")
    assert ctx.problems == []
    by_id = {s.job_id: s for s in samples}
    assert sorted(by_id) == ["1234.pbs01", "1235[7].pbs01"]  # cpu, cpuacct: links read once
    job = by_id["1234.pbs01"]
    assert job.cpu_seconds == pytest.approx(7200.5)
    assert (job.mem_bytes, job.mem_peak_bytes) == (8589934592, 10737418240)
    assert (job.read_bytes, job.write_bytes) == (3145728 + 1024, 1048576 + 2048)
    assert job.processes == 3
    array = by_id["1235[7].pbs01"]
    assert (array.cpu_seconds, array.processes) == (pytest.approx(1.5), 1)
    assert (array.read_bytes, array.write_bytes) == (None, None)  # no blkio folder


def test_pbs_cgroup_v2_job() -> None:
    (sample,), ctx = _collect(DATA / "pbs-v2-job", "cgroup")
    assert ctx.problems == []
    assert (sample.job_id, sample.cpu_seconds) == ("5678.pbs02", pytest.approx(3600.0))
    assert (sample.mem_bytes, sample.mem_peak_bytes) == (2147483648, 4294967296)
    assert (sample.read_bytes, sample.write_bytes, sample.processes) == (10485760, 20971520, 2)


def _pbs_process(proc: Path, pid: int, job: str, rss_pages: int = 100) -> None:
    """A process of a PBS job known only by its environment (no job cgroup)."""
    folder = proc / str(pid)
    folder.mkdir(parents=True)
    (folder / "stat").write_text(
        f"{pid} (work) R 1 {pid} {pid} 0 -1 0 0 0 0 0 300 100 0 0 20 0 1 0 5000 1 {rss_pages} 0\n"
    )
    (folder / "io").write_text("rchar: 9\nwchar: 9\nread_bytes: 4096\nwrite_bytes: 8192\n")
    (folder / "cgroup").write_text("0::/user.slice\n")
    (folder / "environ").write_bytes(f"HOME=/\0PBS_JOBID={job}\0".encode())


def test_auto_takes_a_job_without_cgroup_from_its_processes(tmp_path: Path) -> None:
    tree = _copy("slurm-v1-job", tmp_path)
    _pbs_process(tree / "proc", 500, "77.pbs")
    _pbs_process(tree / "proc", 501, "77.pbs")
    samples, ctx = _collect(tree, "auto")
    assert ctx.problems == []
    by_id = {s.job_id: s for s in samples}
    assert by_id["2"].source == "cgroup"
    pbs = by_id["77.pbs"]
    assert pbs.source == "proctree"
    assert pbs.cpu_seconds == pytest.approx(2 * 400 * TICK)
    assert pbs.mem_bytes == 2 * 100 * os.sysconf("SC_PAGE_SIZE")
    assert (pbs.read_bytes, pbs.write_bytes, pbs.processes) == (8192, 16384, 2)


def test_process_tree_peak_is_the_largest_sum_seen(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    _pbs_process(proc, 600, "9.pbs", rss_pages=1000)
    collector = JobUsageCollector("c", proc_root=proc, cgroup_root=tmp_path / "none")
    (first,) = collector.collect(CollectContext(host="h"))
    stat = proc / "600" / "stat"
    stat.write_text(stat.read_text().replace(" 1000 0\n", " 10 0\n"))
    (second,) = collector.collect(CollectContext(host="h"))
    page = os.sysconf("SC_PAGE_SIZE")
    assert (first.mem_bytes, first.mem_peak_bytes) == (1000 * page, 1000 * page)
    assert (second.mem_bytes, second.mem_peak_bytes) == (10 * page, 1000 * page)


# ------------------------------------------------------------------ hostile


def test_garbage_value_is_reported_and_the_rest_read(tmp_path: Path) -> None:
    tree = _copy("slurm-v1-job", tmp_path)
    usage = tree / V1_JOB.format("cpuacct") / "cpuacct.usage"
    usage.write_text("twelve\n")
    (sample,), ctx = _collect(tree, "cgroup")
    assert sample.cpu_seconds is None
    assert sample.mem_bytes is not None
    assert sample.processes == 3
    assert [str(p) for p in ctx.problems] == [f"{usage}:1: expected one integer: 'twelve\\n'"]


def test_huge_value_is_null_and_named(tmp_path: Path) -> None:
    tree = _copy("pbs-v1-job", tmp_path)
    peak = tree / "sys/fs/cgroup/memory/pbs_jobs.service/jobid/1234.pbs01/memory.max_usage_in_bytes"
    peak.write_text("18446744073709551615\n")
    samples, ctx = _collect(tree, "cgroup")
    job = next(s for s in samples if s.job_id == "1234.pbs01")
    assert job.mem_peak_bytes is None
    assert job.mem_bytes == 8589934592
    assert ctx.problems == []
    assert dict(ctx.details)["out_of_range_fields"] == "cgroup.memory.max_usage_in_bytes"


def test_unreadable_file_is_reported(tmp_path: Path) -> None:
    # A folder where the file should be: refused as "not a regular file" even for root.
    tree = _copy("pbs-v2-job", tmp_path)
    current = tree / "sys/fs/cgroup/pbs_jobs.service/jobid/5678.pbs02/memory.current"
    current.unlink()
    current.mkdir()
    (sample,), ctx = _collect(tree, "cgroup")
    assert sample.mem_bytes is None
    assert sample.mem_peak_bytes == 4294967296
    assert [str(p) for p in ctx.problems] == [
        f"{current}: not a regular file (a directory); not read"
    ]


def _vanish_after(
    monkeypatch: pytest.MonkeyPatch, folder: Path, where: str, reads: int = 0
) -> None:
    """Remove ``folder`` once the collector found it (``find``) or after ``reads`` reads."""
    if where == "find":
        real_find: Callable[[str], dict[tuple[str, str], list[str]]] = (
            collector_module.find_job_cgroups
        )

        def find(root: str) -> dict[tuple[str, str], list[str]]:
            found = real_find(root)
            shutil.rmtree(folder)
            return found

        monkeypatch.setattr(collector_module, "find_job_cgroups", find)
        return
    real_read = cgroups_module.read_once
    count = [0]

    def read(path: str) -> bytes:
        count[0] += 1
        if count[0] > reads and folder.exists():
            shutil.rmtree(folder)
        return real_read(path)

    monkeypatch.setattr(cgroups_module, "read_once", read)


@pytest.mark.parametrize(("where", "reads"), [("find", 0), ("read", 1)])
def test_cgroup_that_vanishes_is_a_job_that_ended(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str, reads: int
) -> None:
    tree = _copy("pbs-v1-job", tmp_path)
    gone = tree / "sys/fs/cgroup/memory/pbs_jobs.service/jobid/1234.pbs01"
    _vanish_after(monkeypatch, gone, where, reads)
    samples, ctx = _collect(tree, "cgroup")
    assert [s.job_id for s in samples] == ["1235[7].pbs01"]
    assert ctx.problems == []
    assert dict(ctx.details)["jobs_ended"] == f"pbs job 1234.pbs01: {gone} went away"


def test_process_that_exits_between_listing_and_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = _copy("slurm-v1-job", tmp_path)
    proc = str(tree / "proc")
    real_listdir = os.listdir

    def listdir(path: str) -> list[str]:
        names = real_listdir(path)
        return [*names, "99999"] if os.fspath(path) == proc else names

    monkeypatch.setattr(proctree_module.os, "listdir", listdir)
    (sample,), ctx = _collect(tree, "proctree")
    assert sample.processes == 3
    assert ctx.problems == []
    assert ("processes_gone", "1") in ctx.details


def test_unreadable_process_io_is_reported_once_and_io_unknown(tmp_path: Path) -> None:
    tree = _copy("slurm-v1-job", tmp_path)
    for pid in ("26089", "26360"):
        io = tree / "proc" / pid / "io"
        io.unlink()
        io.mkdir()
    (sample,), ctx = _collect(tree, "proctree")
    assert (sample.read_bytes, sample.write_bytes) == (None, None)
    assert sample.cpu_seconds is not None
    assert sample.processes == 3
    assert len(ctx.problems) == 1
    assert "not a regular file (a directory)" in str(ctx.problems[0])


def test_missing_mounts(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    with pytest.raises(CollectError, match=r"missing/sys/fs/cgroup: cannot list"):
        _collect(missing, "cgroup")
    with pytest.raises(CollectError, match=r"missing/proc: cannot list"):
        _collect(missing, "proctree")
    # auto: no cgroup mount is no cgroup jobs; an unlistable procfs is reported.
    samples, ctx = _collect(missing, "auto")
    assert samples == []
    assert [str(p) for p in ctx.problems] == [
        f"{missing}/proc: cannot list: No such file or directory"
    ]
    # The cgroups are still read when the procfs is not there.
    samples, ctx = _collect(DATA / "pbs-v2-job", "auto", proc=missing)
    assert [s.job_id for s in samples] == ["5678.pbs02"]
    assert len(ctx.problems) == 1


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="mode must be auto, cgroup or proctree"):
        JobUsageCollector("c", mode="gpu")  # type: ignore[arg-type]


def test_a_job_whose_cgroup_is_gone_before_its_processes_is_ending(tmp_path: Path) -> None:
    """At a job's end Slurm removes its cgroup while a process may be left:
    that process alone is not the job's usage."""
    tree = _copy("slurm-v1-job", tmp_path)
    collector = JobUsageCollector(
        "c", proc_root=tree / "proc", cgroup_root=tree / "sys/fs/cgroup", mode="auto"
    )
    (first,) = collector.collect(CollectContext(host="h"))
    assert first.source == "cgroup"
    for controller in ("cpuacct", "memory", "freezer"):
        shutil.rmtree(tree / V1_JOB.format(controller))
    ctx = CollectContext(host="h")
    assert collector.collect(ctx) == []
    assert dict(ctx.details)["jobs_ended"] == (
        "slurm job 2: its cgroup is gone, some processes not yet"
    )
    # A fresh collector, which never saw the cgroup, sums the processes.
    (fresh,) = JobUsageCollector(
        "c", proc_root=tree / "proc", cgroup_root=tree / "sys/fs/cgroup"
    ).collect(CollectContext(host="h"))
    assert fresh.source == "proctree"
    # Once the processes are gone too, the job is forgotten.
    shutil.rmtree(tree / "proc")
    (tree / "proc").mkdir()
    ctx = CollectContext(host="h")
    assert collector.collect(ctx) == []
    assert "jobs_ended" not in dict(ctx.details)
    assert collector._had_cgroup == set()
