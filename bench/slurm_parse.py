"""Parsing ``squeue --json`` of a large cluster: 10,000 jobs.

There is no Slurm budget; the nearest is PBS's (``qstat -f`` with 10k
jobs parsed and diffed in at most 1 s), which this prints the figure against.
Anchor: ``json.loads`` of the same bytes, in the same run (the floor for any
parser built on the standard library). The jobs are the six of a recorded
Slurm 22.05.8 listing (tests/data/slurm), repeated with new ids.

    python bench/slurm_parse.py
    python bench/slurm_parse.py --jobs 50000 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

from collectbus.collectors.slurm.parse import parse_squeue_json

RECORDED = (
    Path(__file__).resolve().parents[1] / "tests/data/slurm/squeue_json_22.05.8_after_jobs.json"
)
BUDGET_S = 1.0


def listing(jobs: int) -> bytes:
    doc = json.loads(RECORDED.read_bytes())
    recorded = doc["jobs"]
    doc["jobs"] = [dict(recorded[i % len(recorded)], job_id=i + 1) for i in range(jobs)]
    return json.dumps(doc, indent=2).encode()


def best_of(repeat: int, work: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    data = listing(args.jobs)
    anchor = best_of(args.repeat, lambda: json.loads(data))
    parse = best_of(args.repeat, lambda: parse_squeue_json(data, cluster=None, observed_ns=0))
    print(f"squeue --json, {args.jobs} jobs, {len(data) / 1e6:.1f} MB")
    print(f"  anchor json.loads:       {anchor * 1e3:8.1f} ms")
    print(f"  parse_squeue_json:       {parse * 1e3:8.1f} ms = {parse / anchor:.2f}x json.loads")
    print(
        f"  against a 1 s budget:    {parse / BUDGET_S:.2f}x ({'within' if parse <= BUDGET_S else 'OVER'})"
    )


if __name__ == "__main__":
    main()
