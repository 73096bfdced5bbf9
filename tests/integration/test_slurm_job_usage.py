"""Per-job usage on the real single-node Slurm of ``scripts/slurm-local.sh``,
against Slurm's own accounting.

Two jobs of known shape run one after the other (the node has two cores): one
core kept busy for 20 s on a 2-core allocation, then a few idle seconds, and
an idle ``sleep``. While they run, the ``jobusage`` collector samples them
every second, from their cgroups (the script runs Slurm with
``proctrack/cgroup``) and, separately, from their processes alone; each
collection is written to a store. The CPU time of each job's last stored
sample agrees with ``sacct``'s TotalCPU, and the process-tree figures agree
with the cgroup's.

Without a running Slurm the tests are skipped with the reason, except when
``CI=true``: then they fail.
"""

from __future__ import annotations

import re
import secrets
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from collectbus.clock import SystemClock
from collectbus.collectors.base import CollectContext
from collectbus.collectors.jobusage.cgroups import find_job_cgroups
from collectbus.collectors.jobusage.collector import JobUsageCollector
from collectbus.records import CollectionEvent, JobUsageSample
from collectbus.store import Store
from collectbus.store import open as open_store
from tests.integration.test_slurm import _run, _unavailable, slurm_env

__all__ = ["slurm_env"]  # the module fixture, shared with test_slurm.py

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

CLUSTER = "collectbus"
DEADLINE_S = 240
BUSY_S = 20
#: How far collectbus's CPU time may stray from sacct's TotalCPU.
RELATIVE = 0.05


@dataclass
class Usage:
    """What the collections saw of the two jobs, and sacct's figures."""

    ids: dict[str, str]
    store: Store
    #: Per job, the last sample of each collector (auto, proctree only).
    last: dict[str, dict[str, JobUsageSample]] = field(default_factory=dict)
    #: Per job, the samples of both collectors taken in the same round.
    pairs: dict[str, list[tuple[JobUsageSample, JobUsageSample]]] = field(default_factory=dict)
    had_cgroup: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)
    total_cpu: dict[str, float] = field(default_factory=dict)


def total_cpu_seconds(text: str) -> float:
    """sacct's TotalCPU: ``[D-][HH:]MM:SS[.mmm]``."""
    match = re.fullmatch(r"(?:(\d+)-)?(?:(\d+):)?(\d+):(\d+(?:\.\d+)?)", text.strip())
    if match is None:
        raise AssertionError(f"not a TotalCPU: {text!r}")
    days, hours, minutes, seconds = match.groups()
    return ((int(days or 0) * 24 + int(hours or 0)) * 60 + int(minutes)) * 60 + float(seconds)


def test_total_cpu_seconds() -> None:
    assert total_cpu_seconds("00:05.827") == pytest.approx(5.827)
    assert total_cpu_seconds("01:02:03") == 3723
    assert total_cpu_seconds("1-00:00:01.5") == pytest.approx(86401.5)


def _sacct(env: dict[str, str], job_id: str) -> tuple[str, str | None]:
    """The job's State, and its TotalCPU once its batch step is accounted
    (slurmdbd has the allocation's end before its steps' figures)."""
    out = _run(env, "sacct", "-j", job_id, "-n", "-P", "-o", "JobID,State,TotalCPU")
    lines = {f[0]: f[1:] for f in (line.split("|") for line in out.splitlines() if line)}
    state = lines.get(job_id, ["", ""])[0]
    batch = lines.get(f"{job_id}.batch")
    done = state == "COMPLETED" and batch is not None and batch[0] == "COMPLETED"
    return state, lines[job_id][1] if done else None


def _collect(collector: JobUsageCollector, store: Store, usage: Usage, kind: str) -> None:
    ctx = CollectContext(host="localhost", clock=SystemClock())
    started = time.time_ns()
    samples = [s for s in collector.collect(ctx) if s.job_id in usage.ids.values()]
    usage.problems += [str(p) for p in ctx.problems]
    if kind == "auto":
        store.write(
            [
                *samples,
                CollectionEvent(
                    source=collector.name, host="localhost", started_ns=started,
                    duration_ns=time.time_ns() - started,
                    status="partial" if ctx.problems else "ok", records=len(samples),
                ),
            ]
        )  # fmt: skip
    for sample in samples:
        usage.last.setdefault(sample.job_id, {})[kind] = sample


@pytest.fixture(scope="module")
def usage(slurm_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Usage]:
    env = slurm_env
    tag = f"cbu{secrets.token_hex(3)}"
    busy = f'timeout {BUSY_S} sh -c "while :; do :; done"; sleep 6'
    ids = {
        "busy": _run(env, "sbatch", "--parsable", "-J", f"{tag}-busy", "-o", "/dev/null",
                     "-n1", "-c2", "--wrap", busy).strip(),
        "sleep": _run(env, "sbatch", "--parsable", "-J", f"{tag}-sleep", "-o", "/dev/null",
                      "-n1", "-c1", "--wrap", "sleep 8").strip(),
    }  # fmt: skip
    folder = tmp_path_factory.mktemp("jobusage")
    store = open_store(f"sqlite:///{Path(folder) / 'collectbus.db'}")
    result = Usage(ids=ids, store=store)
    auto = JobUsageCollector(CLUSTER, mode="auto")
    tree = JobUsageCollector(CLUSTER, mode="proctree")
    deadline = time.monotonic() + DEADLINE_S
    try:
        while time.monotonic() < deadline:
            running = set(find_job_cgroups("/sys/fs/cgroup"))
            result.had_cgroup |= {j for s, j in running if s == "slurm" and j in ids.values()}
            before = {job: kinds.get("auto") for job, kinds in result.last.items()}
            _collect(auto, store, result, "auto")
            _collect(tree, store, result, "proctree")
            for job, kinds in result.last.items():
                if kinds.get("auto") is not before.get(job) and "proctree" in kinds:
                    result.pairs.setdefault(job, []).append((kinds["auto"], kinds["proctree"]))
            states = {job: _sacct(env, job) for job in ids.values()}
            totals = {job: cpu for job, (_, cpu) in states.items() if cpu is not None}
            if len(totals) == len(ids):
                result.total_cpu = {job: total_cpu_seconds(cpu) for job, cpu in totals.items()}
                break
            bad = {
                job: s
                for job, (s, _) in states.items()
                if s not in ("PENDING", "RUNNING", "COMPLETED", "")
            }
            assert not bad, f"jobs ended badly: {bad}"
            time.sleep(1)
        else:
            raise AssertionError(f"jobs {ids} not completed in {DEADLINE_S} s")
        yield result
    finally:
        subprocess.run(["scancel", *ids.values()], env=env, capture_output=True, check=False)
        store.close()


def _stored_cpu(usage: Usage, job_id: str) -> float:
    rows = usage.store.job_usage(CLUSTER, job_id)
    assert rows, f"no stored sample of job {job_id}"
    cpu = rows[-1]["cpu_seconds"]
    assert isinstance(cpu, float)
    return cpu


def test_cpu_time_per_job_agrees_with_sacct(usage: Usage) -> None:
    assert usage.problems == []
    busy, idle = usage.ids["busy"], usage.ids["sleep"]
    busy_cpu = _stored_cpu(usage, busy)
    sacct_busy = usage.total_cpu[busy]
    # A core kept busy, on a shared machine: seconds of CPU, up to 20.
    assert 1.0 < sacct_busy <= BUSY_S + 1
    assert busy_cpu == pytest.approx(sacct_busy, rel=RELATIVE)
    # Busy ≈ one of its two cores; the sleep ≈ none.
    idle_cpu = _stored_cpu(usage, idle)
    assert idle_cpu < 0.5
    assert abs(idle_cpu - usage.total_cpu[idle]) < 0.5


def test_jobs_are_read_from_their_cgroups(usage: Usage) -> None:
    if not usage.had_cgroup:
        _unavailable(
            "its jobs have no cgroup (Slurm runs without proctrack/cgroup: "
            "scripts/slurm-local.sh stop, then start)"
        )
    assert usage.had_cgroup == set(usage.ids.values())
    for job in usage.ids.values():
        assert usage.last[job]["auto"].source == "cgroup"
        assert {r["source"] for r in usage.store.job_usage(CLUSTER, job)} == {"cgroup"}


def test_process_tree_agrees_with_the_cgroup(usage: Usage) -> None:
    """Each job's last round read from its cgroup, against its processes read
    just after."""
    if not usage.had_cgroup:
        _unavailable("its jobs have no cgroup to compare with")
    for job in usage.ids.values():
        both = [(a, t) for a, t in usage.pairs[job] if a.source == "cgroup"]
        assert both, f"job {job}: no round read both ways"
        from_cgroup, from_tree = both[-1]
        assert from_tree.source == "proctree"
        assert from_cgroup.cpu_seconds is not None
        assert from_tree.cpu_seconds is not None
        assert from_tree.cpu_seconds == pytest.approx(
            from_cgroup.cpu_seconds, rel=RELATIVE, abs=0.3
        )
        assert from_tree.processes == from_cgroup.processes
    busy = usage.ids["busy"]
    last_tree = usage.pairs[busy][-1][1].cpu_seconds
    assert last_tree == pytest.approx(usage.total_cpu[busy], rel=RELATIVE)
