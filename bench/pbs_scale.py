"""Budget: one PBS jobs collection of 10,000 jobs, parse + diff + store, <= 1 s; <= 50 ms unchanged.

Anchor: plain ``json.loads`` of the same payload, in the same run.

The listing is built from the shapes of the recorded real jobs
(``tests/data/pbs/qstat_fx_json__*.json``: Aurora's finished, held, queued
and deleted jobs, MetaCentrum's running one): each of the 10,000 jobs is a
copy of one of them with its own id, name, owner, times and usage, printed
in PBS's layout. A cycle with 5% of the jobs changed (usage of running jobs
moving, some jobs starting or ending) and a cycle with none changed are timed
through :class:`IncrementalJobs`, the parser the collector uses, and the
full parse is timed for reference. The unchanged cycle reads a new payload
(its header's timestamp a minute later), as qstat prints one every time.

After the parse, each cycle's records go to the job store as the daemon
writes them: ``Store.write`` of the records and their ``collection_log``
entry (a complete listing, as the collector notes it), in one transaction,
which diffs the records against the stored jobs and writes only what
changed (``diff+store``: the two are one transaction and are timed together).
On SQLite (a temporary file) and on PostgreSQL (a throw-away database) when
it is reachable. Before each timed cycle the store holds the previous
listing, written the same way; cycles are one minute apart.

    python bench/pbs_scale.py
    python bench/pbs_scale.py --jobs 20000 --changed 0.10 --repeat 7
    python bench/pbs_scale.py --pg-url ''    # SQLite only
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import random
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from collectbus.collectors.pbs.incremental import IncrementalJobs
from collectbus.collectors.pbs.parse import parse_qstat_jobs
from collectbus.jobtrack.writer import TrackedStore
from collectbus.records import CLUSTER_DETAIL, COMPLETE_LISTING, CollectionEvent, JobRecord
from collectbus.store import Store
from collectbus.store import open as open_store
from pgdb import pg_database

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "pbs"
SERVER = "aurora-pbs-0001.hostmgmt.cm.aurora.alcf.anl.gov"
ZONE = ZoneInfo("America/Chicago")
BUDGET_CYCLE_S = 1.0
BUDGET_UNCHANGED_S = 0.050

MINUTE_NS = 60 * 10**9
T0_NS = 1752784808 * 10**9


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


class Stores:
    """The job stores a cycle is written to, and the time of the next cycle."""

    def __init__(self, stores: dict[str, Store]) -> None:
        # Each store with the job tracker in front, as the daemon writes.
        self.stores = {label: TrackedStore(store) for label, store in stores.items()}
        self.now_ns = T0_NS

    def tick(self) -> int:
        self.now_ns += MINUTE_NS
        return self.now_ns

    def write(self, label: str, records: list[JobRecord], now_ns: int) -> float:
        event = CollectionEvent(
            source="pbs-jobs",
            host="bench",
            started_ns=now_ns,
            duration_ns=1,
            status="ok",
            records=len(records),
            details=(("server", SERVER), (CLUSTER_DETAIL, "bench"), COMPLETE_LISTING),
        )
        start = time.perf_counter()
        self.stores[label].write([*records, event])
        return time.perf_counter() - start


def cycle_s(
    parser: IncrementalJobs, before: bytes, after: bytes, repeat: int, stores: Stores
) -> dict[str, float]:
    """Seconds per phase of a cycle that reads ``after`` when the last one read ``before``
    (the best of ``repeat``), each store holding what ``before`` gave."""
    times: dict[str, list[float]] = {"parse": []}
    for _ in range(repeat):
        now = stores.tick()
        previous = parser.parse(before, now).records
        for label in stores.stores:
            stores.write(label, previous, now)
        now = stores.tick()
        start = time.perf_counter()
        records = parser.parse(after, now).records
        times["parse"].append(time.perf_counter() - start)
        for label in stores.stores:
            times.setdefault(f"diff+store {label}", []).append(stores.write(label, records, now))
    return {name: min(values) for name, values in times.items()}


@contextmanager
def job_stores(pg_url: str) -> Iterator[Stores]:
    """A fresh SQLite store, and a PostgreSQL one in a throw-away database if reachable."""
    with tempfile.TemporaryDirectory() as folder, contextlib.ExitStack() as stack:
        stores = {"sqlite": open_store(f"sqlite:///{folder}/bench.db")}
        stack.callback(stores["sqlite"].close)
        if pg_url:
            try:
                url = stack.enter_context(pg_database(pg_url))
            except psycopg.OperationalError as err:
                print(f"PostgreSQL: skipped, not reachable at {pg_url}: {str(err).splitlines()[0]}")
            else:
                stores["postgresql"] = open_store(url)
                stack.callback(stores["postgresql"].close)
        yield Stores(stores)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=10_000)
    ap.add_argument("--changed", type=float, default=0.05)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/test")
    args = ap.parse_args()
    with job_stores(args.pg_url) as stores:
        run(args, stores)


def run(args: argparse.Namespace, stores: Stores) -> None:
    rng = random.Random(42)
    jobs = make_jobs(args.jobs, rng)
    before = pbs_layout({"timestamp": 1752784748, "pbs_server": SERVER, "Jobs": jobs})
    change(jobs, args.changed, rng)
    after = pbs_layout({"timestamp": 1752784808, "pbs_server": SERVER, "Jobs": jobs})
    # The next minute's listing of the same jobs: a payload of its own, as qstat
    # prints one every time, whose header's timestamp moved.
    again = pbs_layout({"timestamp": 1752784868, "pbs_server": SERVER, "Jobs": jobs})

    anchor = best_of(args.repeat, lambda: json.loads(after))
    full = best_of(
        args.repeat,
        lambda: parse_qstat_jobs(after, cluster="bench", zone=ZONE, observed_ns=1),
    )
    parser = IncrementalJobs(cluster="bench", zone=ZONE)
    cold = best_of(args.repeat, lambda: IncrementalJobs(cluster="bench", zone=ZONE).parse(after, 1))
    changed = cycle_s(parser, before, after, args.repeat, stores)
    changed_jobs = parser.parsed
    unchanged = cycle_s(parser, after, again, args.repeat, stores)
    assert parser.reused == args.jobs
    assert not parser.full
    kept = IncrementalJobs(cluster="bench", zone=ZONE, renew=False)
    unchanged_kept = cycle_s(kept, after, again, args.repeat, stores)

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
        print(f"  cycle, {label}:")
        for name, seconds in phases.items():
            print(f"    {name:<22}{seconds * 1e3:15.1f} ms  {seconds / anchor:5.2f}x json.loads")
        for db in stores.stores:
            total = phases["parse"] + phases[f"diff+store {db}"]
            verdict = "within" if total <= budget else "OVER"
            print(
                f"    whole cycle, {db:<10}{total * 1e3:13.1f} ms  {total / anchor:5.2f}x"
                f" json.loads, {verdict} the budget of {budget * 1e3:.0f} ms"
                f" ({total / budget:.0%} of it)"
            )


if __name__ == "__main__":
    main()
