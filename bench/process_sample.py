"""Budget: one sample of the process collector <= 0.5x psutil's cost for the same processes.

A sample lists /proc, reads every process's ``stat``, picks the top N by CPU %
and by RSS, and reads ``statm``, ``status``, ``io`` and ``cmdline`` of those
alone (``collectors/process/collector.py``).

Anchor: psutil, in the same run, over the same processes (every pid of the
same /proc): ``process_iter(["pid", "name", "username", "cpu_percent",
"memory_info", "io_counters", "num_threads"])``, then the same two tops
picked with ``heapq.nlargest``. Both keep their state between samples
(psutil caches its Process objects, so ``cpu_percent`` is measured between
calls, as ours is). Each round times many samples with the process CPU clock,
the rounds alternate between the two, and the best round of each counts (the
least disturbed by the rest of the machine).

    python bench/process_sample.py
    python bench/process_sample.py --check   # exit 1 when over budget
"""

from __future__ import annotations

import argparse
import heapq
import statistics
import sys
from typing import Any

import psutil

from collectbus.collectors.base import CollectContext
from collectbus.collectors.process.collector import DEFAULT_TOP, ProcessCollector
from host_sample import cpu_us_per_call

BUDGET_RATIO = 0.5
ATTRS = ["pid", "name", "username", "cpu_percent", "memory_info", "io_counters", "num_threads"]


def psutil_sample(top: int) -> None:
    infos: list[dict[str, Any]] = [p.info for p in psutil.process_iter(ATTRS)]
    heapq.nlargest(top, infos, key=lambda i: i["cpu_percent"] or 0.0)
    heapq.nlargest(top, infos, key=lambda i: i["memory_info"].rss if i["memory_info"] else 0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=20, help="samples per round")
    parser.add_argument("--top", type=int, default=DEFAULT_TOP)
    parser.add_argument("--check", action="store_true", help="exit 1 when over budget")
    args = parser.parse_args(argv)

    collector = ProcessCollector("/proc", top=args.top)
    ctx = CollectContext(host="bench")

    def collectbus_sample() -> None:
        collector.collect(ctx)

    def anchor() -> None:
        psutil_sample(args.top)

    # Warm up: both learn the processes (uid names, psutil's Process objects).
    for _ in range(3):
        collectbus_sample()
        anchor()
    if ctx.problems:
        print(f"collectbus could not read /proc: {ctx.problems[0]}")
        return 1
    (sample,) = collector.collect(ctx)
    print(f"processes: {sample.seen}, top {args.top} by CPU and by RSS: {len(sample.processes)}")

    ours: list[float] = []
    theirs: list[float] = []
    for _ in range(args.rounds):
        ours.append(cpu_us_per_call(collectbus_sample, args.calls))
        theirs.append(cpu_us_per_call(anchor, args.calls))

    best_ours, best_theirs = min(ours), min(theirs)
    ratio = best_ours / best_theirs
    ok = ratio <= BUDGET_RATIO
    print(
        f"process sample, CPU time per sample ({args.rounds} rounds of {args.calls}, best; median)"
    )
    print(f"  collectbus ProcessCollector  {best_ours:8.0f} us  ({statistics.median(ours):.0f})")
    print(
        f"  psutil process_iter (anchor) {best_theirs:8.0f} us  ({statistics.median(theirs):.0f})"
    )
    median_ratio = statistics.median(ours) / statistics.median(theirs)
    print(f"  ratio                        {ratio:8.2f}     ({median_ratio:.2f})")
    print(f"  budget: ratio <= {BUDGET_RATIO}: {'PASS' if ok else 'FAIL'}")
    return 1 if args.check and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
