"""Budget: bulk ingest >= 1M values/s into SQLite and into PostgreSQL via COPY.

Anchor: ``executemany`` into PostgreSQL, in the same run (a design measurement gave
54-80k rows/s for it, against 1.5-2.4M rows/s for COPY). Writes synthetic
samples the size of a real 2-CPU host's (about 550 values: 10 disks, 4
interfaces) through ``Store.write``, one transaction per batch of samples.

    python bench/ingest.py
    python bench/ingest.py --samples 1000 --pg-url postgresql://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time

import psycopg

from collectbus.records import HostSample
from collectbus.store import Store
from collectbus.store import open as open_store
from collectbus.testing.hosts import count_values, make_host_sample
from pgdb import pg_database

BUDGET_VALUES_PER_S = 1_000_000
DISKS = (*(f"loop{i}" for i in range(8)), "vda", "zram0")
IFACES = ("lo", "ifb0", "ifb1", "eth0")
T0 = 1_700_000_000 * 10**9


def make_samples(count: int, hosts: int) -> list[HostSample]:
    return [
        make_host_sample(f"host{i % hosts}", T0 + (i // hosts) * 10**9, disks=DISKS, ifaces=IFACES)
        for i in range(count)
    ]


def timed_write(store: Store, samples: list[HostSample], batch: int) -> float:
    """Seconds to write every sample, ``batch`` samples per transaction."""
    start = time.perf_counter()
    for i in range(0, len(samples), batch):
        store.write(samples[i : i + batch])
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=4000)
    parser.add_argument("--hosts", type=int, default=4)
    parser.add_argument(
        "--batches", default="1,100", help="samples per transaction, comma-separated"
    )
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()

    samples = make_samples(args.samples, args.hosts)
    values = sum(count_values(s) for s in samples)
    batches = [int(b) for b in args.batches.split(",")]
    print(f"{len(samples)} samples of {values / len(samples):.0f} values, {args.hosts} hosts")
    results: dict[tuple[str, int], float] = {}

    def measure(label: str, url: str, *, use_copy: bool = True) -> None:
        for batch in batches:
            with open_store(url, use_copy=use_copy) as store:
                store.write(samples[:1])  # hosts, caches and connections warm
                seconds = timed_write(store, samples, batch)
            results[(label, batch)] = values / seconds
            print(f"{label:<26} batch {batch:>4}: {values / seconds / 1e6:6.2f} M values/s")

    with tempfile.TemporaryDirectory() as tmp:
        measure("SQLite executemany", f"sqlite:///{tmp}/ingest.db")
    try:
        with pg_database(args.pg_url) as url:
            measure("PostgreSQL COPY", url)
        with pg_database(args.pg_url) as url:
            measure("PostgreSQL executemany", url, use_copy=False)
    except psycopg.OperationalError as err:
        print(f"PostgreSQL skipped: {str(err).splitlines()[0]}")

    ok = True
    big = max(batches)
    for label in ("SQLite executemany", "PostgreSQL COPY"):
        rate = results.get((label, big))
        if rate is None:
            continue
        passed = rate >= BUDGET_VALUES_PER_S
        ok &= passed
        print(
            f"{'PASS' if passed else 'FAIL'}: {label}, batch {big}: {rate / 1e6:.2f} M values/s "
            f"vs budget >= {BUDGET_VALUES_PER_S / 1e6:.0f} M"
        )
    anchor = results.get(("PostgreSQL executemany", big))
    copy = results.get(("PostgreSQL COPY", big))
    if anchor and copy:
        print(f"ratio COPY / executemany (anchor), batch {big}: {copy / anchor:.1f}x")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
