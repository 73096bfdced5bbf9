"""What publishing one result costs per subscriber (no budget: see below).

Anchor: a bare ``deque.append`` of the same object, timed in the same run the
same way (a Python loop calling a bound method), so the ratio says how many
"appends" a publish costs per subscriber.

The old budget of 100 ns per subscriber is retired. It bought a lock-free
fan-out whose drop counts could trail by one and which relied on the GIL;
publish() now takes each subscriber's own lock to append, evict, count and
wake its consumer (exact counts at every instant, on any Python), and a
collector publishes a few times a second, so a few hundred nanoseconds per
subscriber are not worth more code. The figures are printed to watch for
regressions; what a whole tick of the bus costs is ``bench/bus_tick.py``.

Three cases, for 1, 4 and 16 subscribers of one collector (the default
policy, ``drop_oldest`` without ``every``):

- ``full``: pull subscribers nobody reads, queues full, so every publish
  evicts the oldest result (the drops are checked, exactly, after the run);
- ``room``: pull subscribers with room to spare: their queues grow by one
  entry per publish (and so allocate, which the anchor's full queue does not);
- ``draining``: callback subscribers whose threads drain the queues while the
  publisher runs; this adds waking them when they fall asleep.

Times are CPU time of the publishing thread (``time.thread_time_ns``): the
consumer threads share the GIL, so wall time would also count their work.
Each case is timed in several rounds and the best round counts (the least
disturbed by the rest of the machine). ``ns/pub/sub`` is the whole time of a
publish divided by the subscribers, fixed cost included. ``marginal`` is the
cost of one more subscriber, from the 1 and 16 subscriber figures.

    python bench/bus_publish.py
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
from collections import deque

from collectbus.bus.cache import Result
from collectbus.bus.fanout import Fanout
from collectbus.clock import SystemClock
from collectbus.records import CollectionEvent

SUBSCRIBERS = (1, 4, 16)


def sample_result() -> Result:
    event = CollectionEvent(source="bench", host="h", started_ns=0, duration_ns=0, status="ok")
    return Result(collector="bench", seq=1, tick_ns=0, records=(), event=event)


def anchor_ns(n: int, rounds: int) -> float:
    item = sample_result()
    best = float("inf")
    for _ in range(rounds):
        queue: deque[Result] = deque(maxlen=1000)
        append = queue.append
        t0 = time.thread_time_ns()
        for _ in range(n):
            append(item)
        best = min(best, (time.thread_time_ns() - t0) / n)
    return best


def publish_ns(case: str, subscribers: int, n: int, rounds: int) -> float:
    """Best ns per publish per subscriber over ``rounds``."""
    item = sample_result()
    best = float("inf")
    for _ in range(rounds):
        fanout = Fanout(SystemClock(), warn_interval_s=3600.0)
        if case == "draining":
            for i in range(subscribers):
                fanout.subscribe(lambda r: None, name=f"s{i}", maxsize=1000)
        else:
            size = 1000 if case == "full" else n + 1
            for i in range(subscribers):
                fanout.subscribe(name=f"s{i}", maxsize=size)
            if case == "full":
                for _ in range(1000):
                    fanout.publish(item)
        publish = fanout.publish
        t0 = time.thread_time_ns()
        for _ in range(n):
            publish(item)
        elapsed = time.thread_time_ns() - t0
        best = min(best, elapsed / n / subscribers)
        if case == "full":
            assert all(s.dropped == 1000 + n - 1000 for s in fanout.subscriptions())
        for sub, drained in fanout.close_all():
            if not drained.wait(30):
                raise SystemExit(f"subscriber {sub.name} did not drain")
        sent = n + (1000 if case == "full" else 0)
        for h in fanout.health():  # every result is accounted for, exactly
            assert h.delivered + h.dropped + h.queued == sent, h
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--publishes", type=int, default=50_000, help="per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    # The "full" case drops on purpose; its rate-limited warnings are not the point here.
    logging.getLogger("collectbus.bus").setLevel(logging.ERROR)

    anchor = anchor_ns(args.publishes, args.rounds)
    print(f"anchor: bare deque.append        {anchor:7.1f} ns")
    print()
    print(f"{'case':<10} {'subs':>4} {'ns/pub/sub':>11} {'x anchor':>9}")
    for case in ("full", "room", "draining"):
        figures = {}
        for subs in SUBSCRIBERS:
            ns = publish_ns(case, subs, args.publishes, args.rounds)
            figures[subs] = ns
            print(f"{case:<10} {subs:>4} {ns:11.1f} {ns / anchor:9.2f}")
        first, last = SUBSCRIBERS[0], SUBSCRIBERS[-1]
        marginal = (figures[last] * last - figures[first] * first) / (last - first)
        print(f"{case:<10} {'marginal':>4} {marginal:7.1f} {marginal / anchor:9.2f}")
    return 0


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    sys.exit(main())
