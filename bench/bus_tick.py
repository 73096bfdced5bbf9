"""Budget: one tick of the bus with an empty collector costs <= 50 us of CPU.

A tick is everything the bus does for one scheduled collection: the thread
that fires it waking up (a pool thread keeping the collector's beat, or the
scheduler thread handing the collection to a pool thread), the cache, the
result, the accounting and the publish. The collector is empty (it returns no
records), so what is measured is the bus alone.

Anchor, in the same run: a plain loop on one thread that sleeps until the next
tick of the same aligned schedule (same interval) and calls the same collector
with a new context, as a hand-written sampler would. Its figure is what waking
up at each tick costs at least on this machine; the ratio says how many such
plain ticks one bus tick costs, and ``over anchor`` what the bus adds to it.

Rows, each the CPU time of the whole process (``time.process_time``: every
thread, user and system) divided by the collections that ran:

- ``plain loop``: the anchor, timed from its first tick to its last;
- ``bus, no subscriber``: the bus ticking, its results cached only; this is
  the row the budget bounds. Timed from before ``start()`` to after
  ``stop()``: starting and stopping the bus's threads are counted in;
- ``bus, 1 subscriber``: one callback subscriber (``drop_oldest``) gets every
  result on its own thread: the tick plus waking that thread;
- ``bus, block + other``: a ``block`` subscriber and a ``drop_oldest`` one.

Each round runs every row once, for ``--duration`` seconds at ``--interval``,
one row after the other, so that the anchor and the bus rows share the
machine's conditions; ``--rounds`` rounds, and each row's best round counts
(the least disturbed by the rest of the machine).

    python bench/bus_tick.py
    python bench/bus_tick.py --check   # exit 1 when over budget
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Callable

from collectbus.bus import CollectionBus, Result
from collectbus.clock import NS_PER_S
from collectbus.collectors.base import CollectContext
from collectbus.records import Record

BUDGET_US = 50.0


class EmptyCollector:
    """Collects nothing: a tick of it is the bus's own cost."""

    name = "empty"

    def __init__(self) -> None:
        self.calls = 0

    def collect(self, ctx: CollectContext) -> tuple[Record, ...]:
        self.calls += 1
        return ()


def plain_loop(interval: float, duration: float) -> float:
    """CPU us per call of a loop that sleeps until each tick and collects."""
    collector = EmptyCollector()
    step = int(interval * NS_PER_S)
    start = time.monotonic_ns()
    end = start + int(duration * NS_PER_S)
    cpu = time.process_time_ns()
    tick = start
    while tick < end:
        left = tick - time.monotonic_ns()
        if left > 0:
            time.sleep(left / NS_PER_S)
        collector.collect(CollectContext(host="h"))
        tick += step
    return (time.process_time_ns() - cpu) / collector.calls / 1000


def bus_loop(interval: float, duration: float, subscribers: str) -> float:
    """CPU us per collection of a bus ticking the empty collector."""
    collector = EmptyCollector()
    bus = CollectionBus(host="h", tiers={"fast": interval})
    bus.add(collector, tier="fast", timeout=1.0)
    got: list[int] = []

    def take(result: Result) -> None:
        got.append(result.seq)

    if subscribers in ("one", "block"):
        bus.subscribe(take, name="sink", maxsize=1000, policy="drop_oldest")
    if subscribers == "block":
        bus.subscribe(take, name="blocking", maxsize=1000, policy="block")
    cpu = time.process_time_ns()
    bus.start()
    time.sleep(duration)
    bus.stop()
    spent = time.process_time_ns() - cpu
    health = bus.health()
    for sub in health.subscribers:  # every result reached its subscriber
        if sub.delivered + sub.dropped + sub.queued != collector.calls:
            raise SystemExit(f"subscriber {sub.name}: the counts do not add up: {sub}")
    return spent / collector.calls / 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interval", type=float, default=0.002, help="seconds between ticks")
    parser.add_argument("--duration", type=float, default=1.5, help="seconds per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--check", action="store_true", help="exit 1 when over budget")
    args = parser.parse_args()

    cases: list[tuple[str, Callable[[], float]]] = [
        ("plain loop (anchor)", lambda: plain_loop(args.interval, args.duration))
    ]
    for label, subs in (
        ("bus, no subscriber", "none"),
        ("bus, 1 subscriber", "one"),
        ("bus, block + other", "block"),
    ):

        def run(subs: str = subs) -> float:
            return bus_loop(args.interval, args.duration, subs)

        cases.append((label, run))
    figures: dict[str, list[float]] = {label: [] for label, _ in cases}
    for _ in range(args.rounds):  # rounds interleaved: every row meets the same machine
        for label, case in cases:
            figures[label].append(case())
    rows = [(label, min(runs)) for label, runs in figures.items()]
    anchor = rows[0][1]
    print(f"bus tick: CPU time per collection of an empty collector, every {args.interval:g} s")
    print(f"budget: {BUDGET_US:.0f} us per tick (bus, no subscriber)")
    print()
    print(f"  {'':<22} {'us/tick':>8}  {'x anchor':>8}  {'over anchor':>11}")
    over = False
    for label, us in rows:
        verdict = ""
        if label == "bus, no subscriber":
            over = us > BUDGET_US
            verdict = "FAIL" if over else "ok"
        extra = f"{us - anchor:8.1f} us" if label != rows[0][0] else ""
        print(f"  {label:<22} {us:8.1f}  {us / anchor:7.2f}x  {extra:>11}  {verdict}")
    if args.check and over:
        return 1
    return 0


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    sys.exit(main())
