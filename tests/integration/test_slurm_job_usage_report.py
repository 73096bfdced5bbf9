"""``collectbus job ID --usage`` on the real single-node Slurm of
``scripts/slurm-local.sh``, against Slurm's own accounting.

Four jobs of known shape run (the node has two cores): one core kept busy
for 20 s on a 2-core allocation; one that fills 500 MiB and holds it 15 s;
an idle ``sleep``; a 2-task ``srun -n 2`` whose tasks each keep a core busy.
While they run, the Slurm jobs collector and the ``jobusage`` collector are
read every second and stored, as the daemon stores them. Then, per job, the
report's figures are checked against ``sacct``:

- CPU time against ``TotalCPU`` (all steps) within 5 %;
- CPU efficiency against ``seff``'s own formula, ``TotalCPU / (AllocCPUS x
  Elapsed)``: Debian packages no ``seff`` (it is in Slurm's ``contribs``,
  which Debian does not ship), so the formula is applied to sacct's figures;
- the memory peak of the 500 MiB job against ``MaxRSS`` within 5 %: the
  job's cgroup peak (``memory.max_usage_in_bytes``) counts its page cache
  too, which a job that only fills memory barely has; MaxRSS is the largest
  task's, which for a one-task job is the job's;
- the verdicts: the busy job used about half its 2 cores and should ask for
  1, the sleep about none.

Without a running Slurm the tests are skipped with the reason, except when
``CI=true``: then they fail.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from collectbus.clock import SystemClock
from collectbus.collectors.base import CollectContext
from collectbus.collectors.jobusage.collector import JobUsageCollector
from collectbus.collectors.run import LocalRunner
from collectbus.collectors.slurm.collector import SlurmJobsCollector, SlurmSettings
from collectbus.jobtrack.writer import TrackedStore
from collectbus.records import JobRecord
from collectbus.store import open as open_store
from tests.integration.cli_helpers import collectbus_env, collectbus_in_process
from tests.integration.test_slurm import _run, slurm_env
from tests.integration.test_slurm_job_usage import total_cpu_seconds

__all__ = ["slurm_env"]  # the module fixture, shared with test_slurm.py

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

CLUSTER = "collectbus"  # ClusterName of scripts/slurm-local.sh
DEADLINE_S = 300
RELATIVE = 0.05
MIB = 2**20
HOLD = "import time; b = bytearray(500 * 2**20); time.sleep(15)"
SPIN = 'timeout {s} sh -c "while :; do :; done"'


@dataclass
class Report:
    ids: dict[str, str]
    tmp: Path
    env: dict[str, str]
    sacct: dict[str, dict[str, str]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def usage(self, role: str) -> dict[str, object]:
        done = collectbus_in_process(
            "job", self.ids[role], "--usage", "--format", "json", cwd=self.tmp, env=self.env
        )
        assert done.returncode == 0, done.stderr
        doc: dict[str, object] = json.loads(done.stdout)
        return doc


def _bytes(text: str) -> int:
    """sacct's MaxRSS: ``123K``, ``1.5M``, ``2G`` (K = 1024), or bytes."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([KMGT]?)", text.strip())
    if match is None:
        raise AssertionError(f"not a MaxRSS: {text!r}")
    number, unit = match.groups()
    return int(float(number) * 1024 ** " KMGT".index(unit or " "))


def _accounting(env: dict[str, str], job_id: str) -> dict[str, str] | None:
    """The job's sacct line, with MaxRSS the largest of its steps'; None until
    the job and each of its steps are COMPLETED."""
    out = _run(env, "sacct", "-j", job_id, "-n", "-P", "-o",
               "JobID,State,TotalCPU,AllocCPUS,ElapsedRaw,MaxRSS")  # fmt: skip
    lines = [line.split("|") for line in out.splitlines() if line]
    keys = ("JobID", "State", "TotalCPU", "AllocCPUS", "ElapsedRaw", "MaxRSS")
    rows = [dict(zip(keys, line, strict=True)) for line in lines]
    job = next((r for r in rows if r["JobID"] == job_id), None)
    steps = [r for r in rows if r["JobID"].startswith(f"{job_id}.")]
    states = {r["State"].split()[0] for r in (job, *steps)} if job is not None else set()
    bad = states - {"COMPLETED", "RUNNING", "PENDING"}
    assert not bad, f"job {job_id} ended badly: {rows}"
    if job is None or not steps or states != {"COMPLETED"}:
        return None
    rss = [_bytes(r["MaxRSS"]) for r in steps if r["MaxRSS"]]
    if not rss:
        return None
    return {**job, "MaxRSS": str(max(rss))}


@pytest.fixture(scope="module")
def report(slurm_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Report]:
    env = slurm_env
    tag = f"cbr{secrets.token_hex(3)}"

    def submit(role: str, *args: str) -> str:
        return _run(env, "sbatch", "--parsable", "-J", f"{tag}-{role}", "-o", "/dev/null",
                    *args).strip()  # fmt: skip

    python = shutil.which("python3") or "python3"
    ids = {
        "busy": submit("busy", "-n1", "-c2", "--wrap", f"{SPIN.format(s=20)}; sleep 3"),
        "memory": submit("memory", "-n1", "-c1", "--mem=900M", "--wrap", f"{python} -c '{HOLD}'"),
        "sleep": submit("sleep", "-n1", "-c1", "--wrap", "sleep 10"),
        "tasks": submit(
            "tasks", "-n2", "--wrap", f"srun -n 2 sh -c '{SPIN.format(s=10)}; exit 0'; sleep 3"
        ),
    }
    tmp = tmp_path_factory.mktemp("jobusage-report")
    url = f"sqlite:///{tmp / 'collectbus.db'}"
    store = open_store(url)
    tracked = TrackedStore(store)
    runner = LocalRunner(timeout=30, env=env)
    jobs = SlurmJobsCollector(SlurmSettings(timeout_s=30, sacct_lookback_s=3600), runner=runner)
    usage = JobUsageCollector(CLUSTER)
    result = Report(ids=ids, tmp=tmp, env=collectbus_env(tmp, url))
    mine = set(ids.values())
    deadline = time.monotonic() + DEADLINE_S
    try:
        while True:
            ctx = CollectContext(host="localhost", clock=SystemClock())
            samples = [s for s in usage.collect(ctx) if s.job_id in mine]
            store.write(samples)
            ctx_jobs = CollectContext(host="localhost", clock=SystemClock())
            records = [
                r for r in jobs.collect(ctx_jobs) if isinstance(r, JobRecord) and r.job_id in mine
            ]
            tracked.apply(records, complete=False)
            result.problems += [str(p) for p in (*ctx.problems, *ctx_jobs.problems)]
            final = {r.job_id for r in records if r.state == "completed" and r.end_ns is not None}
            if final >= mine:
                result.sacct = {j: a for j in mine if (a := _accounting(env, j)) is not None}
                if len(result.sacct) == len(mine):
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"jobs {ids} not accounted in {DEADLINE_S} s: {records}")
            time.sleep(1)
        yield result
    finally:
        subprocess.run(["scancel", *ids.values()], env=env, capture_output=True, check=False)
        store.close()


def test_cpu_time_and_efficiency_agree_with_sacct_and_seffs_formula(report: Report) -> None:
    assert report.problems == []
    for role in ("busy", "memory", "sleep", "tasks"):
        doc = report.usage(role)
        acct = report.sacct[report.ids[role]]
        total_cpu = total_cpu_seconds(acct["TotalCPU"])
        assert doc["reason"] is None, (role, doc["reason"])
        cpu = doc["cpu_seconds"]
        assert isinstance(cpu, float)
        if total_cpu < 1:
            assert abs(cpu - total_cpu) < 0.5, role
        else:
            assert cpu == pytest.approx(total_cpu, rel=RELATIVE), role
        seff = total_cpu / (int(acct["AllocCPUS"]) * int(acct["ElapsedRaw"]))
        assert doc["cores"] == int(acct["AllocCPUS"]), role
        assert doc["elapsed_s"] == int(acct["ElapsedRaw"]), role
        assert doc["cpu_efficiency"] == pytest.approx(seff, rel=RELATIVE, abs=0.01), role


def test_memory_peak_agrees_with_maxrss(report: Report) -> None:
    doc = report.usage("memory")
    max_rss = int(report.sacct[report.ids["memory"]]["MaxRSS"])
    assert max_rss > 500 * MIB  # the 500 MiB, and Python itself
    assert doc["mem_peak_bytes"] == pytest.approx(max_rss, rel=RELATIVE)
    assert doc["mem_requested_bytes"] == 900 * MIB
    assert doc["verdicts"][-1].startswith("memory peak 5")  # type: ignore[index]


def test_verdicts(report: Report) -> None:
    busy, idle, tasks = report.usage("busy"), report.usage("sleep"), report.usage("tasks")
    # A core kept busy 20 s of 23 on a 2-core allocation: a little under half
    # (less when the shared machine's other work takes part of that core:
    # the figure against sacct's is checked above).
    assert 0.2 < busy["cpu_efficiency"] < 0.55  # type: ignore[operator]
    assert re.fullmatch(r"used \d+ % of 2 cores: ask for 1", busy["verdicts"][0])  # type: ignore[index]
    assert idle["cpu_efficiency"] < 0.02  # type: ignore[operator]
    assert idle["verdicts"][0] == "used 0 % of 1 core: mostly idle"  # type: ignore[index]
    # Two tasks, each keeping a core busy (as much as the shared machine
    # lets it): both counted (their CPU time against sacct's is checked above).
    assert tasks["cores"] == 2
    (node,) = tasks["per_node"]  # type: ignore[misc]
    assert node["host"] == "localhost"
    assert node["processes_max"] >= 2
