"""Budget: one full host sample <= 120 us of CPU, and <= 0.5x psutil's cost.

A full sample is the six files (stat, meminfo, vmstat, diskstats, net/dev,
loadavg) and the periodic sources read with them: uptime, the three PSI files
when the kernel has them, and the cgroup v2 files when running in a container
with a cgroup of its own. The inventory is a tier of its own and not counted.

Anchor: psutil, in the same run, reading what a sample holds:
``cpu_times(percpu=True)``, ``virtual_memory()``, ``swap_memory()``,
``disk_io_counters(perdisk=True)``, ``net_io_counters(pernic=True)`` and
``getloadavg()`` (a design measurement gave 245 us for it). Both run on the live
/proc, one sample after another; each round times many samples with the
process CPU clock, the rounds alternate between the two, and the best round
counts (the least disturbed by the rest of the machine).

    python bench/host_sample.py
    python bench/host_sample.py --check   # exit 1 when over budget
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable

import psutil

from collectbus.collectors.base import CollectContext
from collectbus.collectors.host.collector import HostCollector

BUDGET_US = 120.0
BUDGET_RATIO = 0.5


def psutil_sample() -> None:
    psutil.cpu_times(percpu=True)
    psutil.virtual_memory()
    psutil.swap_memory()
    psutil.disk_io_counters(perdisk=True)
    psutil.net_io_counters(pernic=True)
    psutil.getloadavg()


def cpu_us_per_call(run: Callable[[], object], calls: int) -> float:
    start = time.process_time_ns()
    for _ in range(calls):
        run()
    return (time.process_time_ns() - start) / calls / 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--proc-root", default="/proc")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--calls", type=int, default=2000, help="samples per round")
    parser.add_argument("--check", action="store_true", help="exit 1 when over budget")
    args = parser.parse_args(argv)

    collector = HostCollector(args.proc_root)
    ctx = CollectContext(host="bench")

    def collectbus_sample() -> None:
        collector.collect(ctx)

    # Warm up: the collector learns its layouts, psutil fills its caches.
    for _ in range(50):
        collectbus_sample()
        psutil_sample()
    if ctx.problems:
        print(f"collectbus could not read {args.proc_root}: {ctx.problems[0]}")
        return 1

    print(f"files per sample: {' '.join(collector.sources)}")

    ours: list[float] = []
    theirs: list[float] = []
    for _ in range(args.rounds):
        ours.append(cpu_us_per_call(collectbus_sample, args.calls))
        theirs.append(cpu_us_per_call(psutil_sample, args.calls))
    collector.close()

    best_ours, best_theirs = min(ours), min(theirs)
    ratio = best_ours / best_theirs
    ok = best_ours <= BUDGET_US and ratio <= BUDGET_RATIO
    print(f"host sample, CPU time per sample ({args.rounds} rounds of {args.calls}, best; median)")
    print(f"  collectbus HostCollector  {best_ours:7.1f} us  ({statistics.median(ours):.1f})")
    print(f"  psutil (anchor)           {best_theirs:7.1f} us  ({statistics.median(theirs):.1f})")
    median_ratio = statistics.median(ours) / statistics.median(theirs)
    verdict = "PASS" if ok else "FAIL"
    print(f"  ratio                     {ratio:7.2f}     ({median_ratio:.2f})")
    print(f"  budget: <= {BUDGET_US:.0f} us and ratio <= {BUDGET_RATIO}: {verdict}")
    return 1 if args.check and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
