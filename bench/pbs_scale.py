"""Budget: one PBS jobs collection of 10,000 jobs, parse + diff + store, <= 1 s; <= 50 ms unchanged.

Anchor: plain ``json.loads`` of the same payload, in the same run.

The listing is built from the shapes of the recorded real jobs
(``tests/data/pbs/qstat_fx_json__*.json``: Aurora's finished, held, queued
and deleted jobs, MetaCentrum's running one): each of the 10,000 jobs is a
copy of one of them with its own id, name, owner, times and usage, printed
in PBS's layout. A cycle with 5% of the jobs changed (usage of running jobs
moving, some jobs starting or ending) and a cycle with none changed are timed
through :class:`IncrementalJobs`, the parser the collector uses, and the
full parse is timed for reference.

Only the parse phase exists yet; ``PHASES`` is where the diff and store
phases of a cycle go, each a function of the parsed records.

    python bench/pbs_scale.py
    python bench/pbs_scale.py --jobs 20000 --changed 0.10 --repeat 7
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from collectbus.collectors.pbs.incremental import IncrementalJobs
from collectbus.collectors.pbs.parse import parse_qstat_jobs
from collectbus.records import JobRecord

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "pbs"
SERVER = "aurora-pbs-0001.hostmgmt.cm.aurora.alcf.anl.gov"
ZONE = ZoneInfo("America/Chicago")
BUDGET_CYCLE_S = 1.0
BUDGET_UNCHANGED_S = 0.050

#: The phases of one collection cycle after the command ran: name -> work on the records.
#: The diff against the stored jobs and the store write are added here.
PHASES: dict[str, Callable[[list[JobRecord]], object]] = {}


def templates() -> list[dict[str, Any]]:
    jobs: list[dict[str, Any]] = []
    for path in sorted(DATA.glob("qstat_fx_json__*.json")):
        jobs.extend(json.loads(path.read_bytes())["Jobs"].values())
    return jobs


def pbs_layout(doc: dict[str, Any]) -> bytes:
    return (json.dumps(doc, indent=4, separators=(",", ":")) + "\n").encode()


def _clock(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def make_jobs(count: int, rng: random.Random) -> dict[str, dict[str, Any]]:
    shapes = templates()
    jobs: dict[str, dict[str, Any]] = {}
    for n in range(count):
        job = copy.deepcopy(shapes[n % len(shapes)])
        job_id = f"{7_000_000 + n}.{SERVER}"
        job["Job_Name"] = f"run_{n:05d}"
        job["Job_Owner"] = f"user{n % 300:03d}@aurora-uan-0010"
        job["ctime"] = f"Sun Jul {1 + n % 28:2d} {n % 24:02d}:{n % 60:02d}:{n * 7 % 60:02d} 2025"
        job["eligible_time"] = _clock(rng.randrange(0, 400 * 3600))
        if "resources_used" in job:
            job["resources_used"]["walltime"] = _clock(rng.randrange(60, 6 * 3600))
        jobs[job_id] = job
    return jobs


def change(jobs: dict[str, dict[str, Any]], share: float, rng: random.Random) -> None:
    """Change ``share`` of the jobs the way a minute changes a real listing."""
    for job_id in rng.sample(sorted(jobs), int(len(jobs) * share)):
        job = jobs[job_id]
        used = job.setdefault("resources_used", {"walltime": "00:00:00", "cput": "00:00:00"})
        used["walltime"] = _clock(rng.randrange(60, 6 * 3600))
        used["cput"] = _clock(rng.randrange(60, 600 * 3600))
        if job.get("job_state") == "Q":
            job.update(job_state="R", substate=42, stime="Wed Jul 23 15:35:36 2025")


def best_of(repeat: int, work: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def cycle_s(parser: IncrementalJobs, before: bytes, after: bytes, repeat: int) -> dict[str, float]:
    """Seconds per phase of a cycle that reads ``after`` when the last one read ``before``."""
    phases: dict[str, float] = {}
    parse_times = []
    records: list[JobRecord] = []
    for _ in range(repeat):
        parser.parse(before, 1)
        start = time.perf_counter()
        records = parser.parse(after, 2).records
        parse_times.append(time.perf_counter() - start)
    phases["parse"] = min(parse_times)
    for name, phase in PHASES.items():
        phases[name] = best_of(repeat, lambda phase=phase: phase(records))  # type: ignore[misc]
    return phases


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=10_000)
    ap.add_argument("--changed", type=float, default=0.05)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    rng = random.Random(42)
    jobs = make_jobs(args.jobs, rng)
    before = pbs_layout({"timestamp": 1752784748, "pbs_server": SERVER, "Jobs": jobs})
    change(jobs, args.changed, rng)
    after = pbs_layout({"timestamp": 1752784808, "pbs_server": SERVER, "Jobs": jobs})

    anchor = best_of(args.repeat, lambda: json.loads(after))
    full = best_of(
        args.repeat,
        lambda: parse_qstat_jobs(after, cluster="bench", zone=ZONE, observed_ns=1),
    )
    parser = IncrementalJobs(cluster="bench", zone=ZONE)
    cold = best_of(args.repeat, lambda: IncrementalJobs(cluster="bench", zone=ZONE).parse(after, 1))
    changed = cycle_s(parser, before, after, args.repeat)
    changed_jobs = parser.parsed
    unchanged = cycle_s(parser, after, after, args.repeat)
    assert parser.reused == args.jobs
    assert not parser.full
    kept = IncrementalJobs(cluster="bench", zone=ZONE, renew=False)
    unchanged_kept = cycle_s(kept, after, after, args.repeat)

    print(f"pbs_scale: {args.jobs} jobs, {len(after) / 2**20:.1f} MiB of qstat -f -F json")
    print(f"  anchor  json.loads of the payload          {anchor * 1e3:8.1f} ms")
    print(
        f"  full parse (first cycle, or any quirk)     {full * 1e3:8.1f} ms"
        f"  {full / anchor:5.2f}x json.loads"
    )
    print(
        f"  first cycle (every job parsed)             {cold * 1e3:8.1f} ms"
        f"  {cold / anchor:5.2f}x json.loads"
    )
    for label, phases, budget in (
        (f"{changed_jobs} jobs changed ({args.changed:.0%})", changed, BUDGET_CYCLE_S),
        ("no job changed", unchanged, BUDGET_UNCHANGED_S),
        ("no job changed, records kept (renew=False)", unchanged_kept, BUDGET_UNCHANGED_S),
    ):
        total = sum(phases.values())
        print(f"  cycle, {label}:")
        for name, seconds in phases.items():
            print(f"    {name:<8}{seconds * 1e3:29.1f} ms  {seconds / anchor:5.2f}x json.loads")
        for name in ("diff", "store"):
            if name not in phases:
                print(f"    {name:<8}{'not measured yet':>32}")
        verdict = "within" if total <= budget else "OVER"
        print(
            f"    measured phases {total * 1e3:21.1f} ms  {verdict} the budget of"
            f" {budget * 1e3:.0f} ms ({total / budget:.0%} of it)"
        )


if __name__ == "__main__":
    main()
