"""Cost of a ``/metrics`` scrape over a large ``calls`` table with 1,000 new rows.

collectbus counts each row once, from a watermark (``collectbus.pendingids``,
shared with the aggregates): a scrape reads only the rows added since the
previous one (and any ids it skipped that have appeared since), as one ``GROUP BY``,
and saves the series that changed in ``serve_counters`` (as ``collectbus
serve`` does, so that a restart continues them): that write is in the timing.

Anchor, measured in the same run: the naive exporter, which on every scrape
reads the whole table and re-observes every duration into a fresh
``prometheus_client`` Histogram (and Counter), then renders it. That is what
inflates its counters; it is also what makes each scrape cost the history.

    python bench/serve_scrape.py
    python bench/serve_scrape.py --rows 1000000 --new 1000 --pg-url postgresql://postgres@127.0.0.1:5432/test
    python bench/serve_scrape.py --no-pg
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable

import psycopg
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest
from sqlalchemy import text

from collectbus.clock import SystemClock
from collectbus.serve import metrics_registry
from collectbus.serve.counting.saved import SavedSeries
from collectbus.serve.counting.tally import DURATION_BUCKETS_S
from collectbus.serve.metrics.callstats import CallStatsSource
from collectbus.store import Store
from collectbus.store import open as open_store
from collectbus.store.bulk import RowTuple
from collectbus.store.calls import insert_calls
from pgdb import pg_database

T0 = 1_700_000_000 * 10**9
HANDLERS = tuple(f"api.handler_{i}" for i in range(20))
CHUNK = 100_000


def call_rows(start: int, n: int) -> list[RowTuple]:
    """Rows in ``collectbus.store.calls.COLUMNS`` order: 20 handlers, 1 in 50 failing."""
    return [
        (
            "bench-host",
            1000 + i % 7,
            i % 5,
            HANDLERS[i % 20],
            "app.handler",
            T0 + i * 1000,
            (i * 7919) % 2_000_000_000 + 20_000,  # 20 µs .. 2 s
            "ValueError" if i % 50 == 0 else None,
            None,
            None,
            None,
            None,
        )
        for i in range(start, start + n)
    ]


def fill(store: Store, start: int, n: int) -> None:
    copy = store.dialect == "postgresql"
    for i in range(start, start + n, CHUNK):
        with store.engine.begin() as conn:
            insert_calls(conn, call_rows(i, min(CHUNK, start + n - i)), copy=copy)


def naive_scrape(store: Store) -> tuple[bytes, float]:
    """The anchor: every row re-observed into a fresh Histogram, then rendered."""
    registry = CollectorRegistry()
    calls = Counter("naive_calls", "calls", ["handler", "outcome"], registry=registry)
    durations = Histogram(
        "naive_call_duration_seconds",
        "durations",
        ["handler"],
        buckets=DURATION_BUCKETS_S,
        registry=registry,
    )
    total = 0.0
    with store.engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=CHUNK).execute(
            text("SELECT handler, error_type, elapsed_ns FROM calls")
        )
        for handler, error_type, elapsed_ns in result:
            calls.labels(handler, "ok" if error_type is None else "error").inc()
            durations.labels(handler).observe(elapsed_ns / 1e9)
            total += 1
    return generate_latest(registry), total


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure(label: str, url: str, rows: int, new: int, rounds: int, naive_rounds: int) -> None:
    with open_store(url) as store:
        t = time.perf_counter()
        fill(store, 0, rows)
        print(f"{label}: {rows:,} calls stored in {time.perf_counter() - t:.1f} s")
        clock = SystemClock()
        saved = SavedSeries(store, "bench:9469", CallStatsSource.name, clock=clock)
        source = CallStatsSource(store, clock=clock, saved=saved)
        registry = metrics_registry([source])

        first = timed(lambda: generate_latest(registry))
        print(f"{label}: first scrape, every row counted once: {first * 1e3:,.0f} ms")
        ours: list[float] = []
        naive: list[float] = []
        stored = rows

        def counted() -> int:
            return sum(t.count for t in source.tally.totals().values())

        for i in range(max(rounds, naive_rounds)):
            fill(store, stored, new)
            stored += new
            if i < rounds:
                before = counted()
                ours.append(timed(lambda: generate_latest(registry)))
                if counted() - before != new:
                    print(f"{label}: a timed scrape counted {counted() - before}, not {new}")
                    raise SystemExit(1)
            if i < naive_rounds:
                naive.append(timed(lambda: naive_scrape(store)))
        # Both must have seen every row (a check, not a timing).
        source.tally.update()
        _, naive_total = naive_scrape(store)
        if counted() != stored or naive_total != stored:
            print(f"{label}: MISMATCH: {counted()=} {naive_total=} {stored=}", file=sys.stderr)
            raise SystemExit(1)
        ours_ms = statistics.median(ours) * 1e3
        naive_ms = statistics.median(naive) * 1e3
        print(
            f"{label}: scrape counting {new:,} new rows at {stored:,}: collectbus {ours_ms:.2f} ms "
            f"(median of {len(ours)}), naive re-observing exporter {naive_ms:,.0f} ms "
            f"(median of {len(naive)})"
        )
        print(
            f"{label}: ratio collectbus / naive = {ours_ms / naive_ms:.5f} "
            f"(the naive exporter costs {naive_ms / ours_ms:,.0f}x more per scrape)"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--new", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--naive-rounds", type=int, default=3)
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--no-pg", action="store_true", help="SQLite only")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        measure(
            "sqlite",
            f"sqlite:///{tmp}/bench.db",
            args.rows,
            args.new,
            args.rounds,
            args.naive_rounds,
        )
    if args.no_pg:
        return 0
    try:
        with psycopg.connect(args.pg_url, connect_timeout=3):
            pass
    except psycopg.Error as err:
        print(f"postgresql: skipped, {args.pg_url} unreachable: {str(err).strip().splitlines()[0]}")
        return 0
    with pg_database(args.pg_url) as url:
        measure("postgresql", url, args.rows, args.new, args.rounds, args.naive_rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
