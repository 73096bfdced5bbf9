"""Budget: PBS jobs parse of 10,000 jobs <= 2x json.loads (5% changed), <= 0.35x unchanged.

In every layout (PBS's own, ``json.dump``'s one line, ``indent=2``); and the
whole collection, parse + diff + store, <= 1 s, and <= 50 ms unchanged as the
daemon runs it (``renew_unchanged = false``).

Anchor: plain ``json.loads`` of the same payload, in the same run.

The listing is built from the shapes of the recorded real jobs
(``tests/data/pbs/qstat_fx_json__*.json``: Aurora's finished, held, queued
and deleted jobs, MetaCentrum's running one): each of the 10,000 jobs is a
copy of one of them with its own id, name, owner, times and usage, printed
in PBS's layout, and again as ``json.dump`` writes it (one line, ``"key": value``)
and with ``indent=2``, as a wrapper that parses and writes the listing again
would. In each layout, a cycle with 5% of the jobs changed (usage of running jobs
moving, some jobs starting or ending) and a cycle with none changed are timed
through :class:`IncrementalJobs`, the parser the collector uses, against
its own anchor (``json.loads`` of that layout's payload); the records are
checked against the full parse, which is timed for reference in PBS's layout.
The unchanged cycle reads a new payload
(its header's timestamp a minute later), as qstat prints one every time.

After the parse, each cycle's records (the same in every layout; PBS's is used) go to the job store as the daemon
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
import gc
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
#: Parse only, against json.loads of the same payload, in every layout.
BUDGET_CYCLE_X = 2.0
BUDGET_UNCHANGED_X = 0.35

MINUTE_NS = 60 * 10**9
T0_NS = 1752784808 * 10**9


def templates() -> list[dict[str, Any]]:
    jobs: list[dict[str, Any]] = []
    for path in sorted(DATA.glob("qstat_fx_json__*.json")):
        jobs.extend(json.loads(path.read_bytes())["Jobs"].values())
    return jobs


def pbs_layout(doc: dict[str, Any]) -> bytes:
    return (json.dumps(doc, indent=4, separators=(",", ":")) + "\n").encode()


def dump_layout(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc).encode()


def indent2_layout(doc: dict[str, Any]) -> bytes:
    return (json.dumps(doc, indent=2) + "\n").encode()


LAYOUTS: dict[str, Callable[[dict[str, Any]], bytes]] = {
    'PBS (indent 4, "key":value)': pbs_layout,
    'json.dump (one line, "key": value)': dump_layout,
    'indent=2 ("key": value)': indent2_layout,
}


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
    docs = [{"timestamp": 1752784748, "pbs_server": SERVER, "Jobs": copy.deepcopy(jobs)}]
    change(jobs, args.changed, rng)
    docs.append({"timestamp": 1752784808, "pbs_server": SERVER, "Jobs": jobs})
    # The next minute's listing of the same jobs: a payload of its own, as qstat
    # prints one every time, whose header's timestamp moved.
    docs.append({"timestamp": 1752784868, "pbs_server": SERVER, "Jobs": jobs})
    payloads = {layout: [dump(doc) for doc in docs] for layout, dump in LAYOUTS.items()}
    # Only the payloads stay: the collector's heap holds no parsed listing, and
    # the garbage collector would otherwise walk these millions of objects.
    del docs, jobs
    gc.collect()
    changed = int(args.jobs * args.changed)
    print(f"pbs_scale: {args.jobs} jobs, {changed} changed ({args.changed:.0%}) in a cycle")
    print(
        "  parse, each layout against json.loads of its own payload (best of interleaved rounds):"
    )
    for layout, (before, after, again) in payloads.items():
        check(before, after, again)
        times = parse_rounds(before, after, again, args.repeat, changed, args.jobs)
        anchor = times["anchor"]
        print(f"  layout {layout}, {len(after) / 2**20:.1f} MiB:")
        print(f"    anchor  json.loads of the payload      {anchor * 1e3:8.1f} ms")
        for label, key, budget in (
            (f"cycle, {changed} jobs changed", "changed", BUDGET_CYCLE_X),
            ("cycle, no job changed", "unchanged", BUDGET_UNCHANGED_X),
        ):
            ratio = times[key] / anchor
            verdict = "within" if ratio <= budget else "OVER"
            print(
                f"    {label:<34}{times[key] * 1e3:8.1f} ms  {ratio:5.2f}x json.loads,"
                f" {verdict} the budget of {budget:.2f}x ({ratio / budget:.0%} of it)"
            )

    # The whole collection, in PBS's layout: the records are the same in every layout.
    before, after, again = next(iter(payloads.values()))
    anchor = best_of(args.repeat, lambda: json.loads(after))
    full = best_of(
        args.repeat, lambda: parse_qstat_jobs(after, cluster="bench", zone=ZONE, observed_ns=1)
    )
    cold = best_of(args.repeat, lambda: IncrementalJobs(cluster="bench", zone=ZONE).parse(after, 1))
    parser = IncrementalJobs(cluster="bench", zone=ZONE)
    cycle = cycle_s(parser, before, after, args.repeat, stores)
    unchanged = cycle_s(parser, after, again, args.repeat, stores)
    kept = IncrementalJobs(cluster="bench", zone=ZONE, renew=False)
    unchanged_kept = cycle_s(kept, after, again, args.repeat, stores)
    print("  whole collection, PBS's layout:")
    print(f"    anchor  json.loads of the payload      {anchor * 1e3:8.1f} ms")
    print(
        f"    full parse (any quirk)                 {full * 1e3:8.1f} ms"
        f"  {full / anchor:5.2f}x json.loads"
    )
    print(
        f"    first cycle (every job parsed)         {cold * 1e3:8.1f} ms"
        f"  {cold / anchor:5.2f}x json.loads"
    )
    budgets: tuple[tuple[str, dict[str, float], float | None], ...] = (
        (f"{changed} jobs changed", cycle, BUDGET_CYCLE_S),
        # The daemon's own setting ([collectors.pbs] renew_unchanged = false):
        # the unchanged records are the objects it stored last time.
        (
            "no job changed (the daemon: renew_unchanged = false)",
            unchanged_kept,
            BUDGET_UNCHANGED_S,
        ),
        # renew_unchanged = true, as `collect pbs jobs` prints: every record gets
        # this cycle's time. Its parse has the 0.35x budget above; no whole-cycle one.
        ("no job changed, renew_unchanged = true (reference)", unchanged, None),
    )
    for label, phases, budget in budgets:
        print(f"    cycle, {label}:")
        for name, seconds in phases.items():
            print(f"      {name:<22}{seconds * 1e3:13.1f} ms  {seconds / anchor:5.2f}x json.loads")
        for db in stores.stores:
            total = phases["parse"] + phases[f"diff+store {db}"]
            verdict = (
                ""
                if budget is None
                else f", {'within' if total <= budget else 'OVER'} the budget of"
                f" {budget * 1e3:.0f} ms ({total / budget:.0%} of it)"
            )
            print(
                f"      whole cycle, {db:<10}{total * 1e3:11.1f} ms  {total / anchor:5.2f}x"
                f" json.loads{verdict}"
            )


def parse_rounds(
    before: bytes, after: bytes, again: bytes, repeat: int, changed: int, jobs: int
) -> dict[str, float]:
    """Best seconds of the anchor and of the two cycles, measured round after round.

    Each round times ``json.loads(after)``, then a parse of ``after`` by a
    parser that last read ``before``, then a parse of ``again`` (the same jobs).
    """
    times: dict[str, list[float]] = {"anchor": [], "changed": [], "unchanged": []}
    parser = IncrementalJobs(cluster="bench", zone=ZONE)
    for observed_ns in range(0, 3 * repeat, 3):
        start = time.perf_counter()
        json.loads(after)
        times["anchor"].append(time.perf_counter() - start)
        parser.parse(before, observed_ns)
        start = time.perf_counter()
        parser.parse(after, observed_ns + 1)
        times["changed"].append(time.perf_counter() - start)
        assert (parser.parsed, parser.full) == (changed, False)
        start = time.perf_counter()
        parser.parse(again, observed_ns + 2)
        times["unchanged"].append(time.perf_counter() - start)
        assert (parser.reused, parser.same) == (jobs, True)
    return {name: min(values) for name, values in times.items()}


def check(before: bytes, after: bytes, again: bytes) -> None:
    """The incremental records of each cycle are the full parse's (not timed)."""
    parser = IncrementalJobs(cluster="bench", zone=ZONE)
    for observed_ns, payload in enumerate((before, after, again), 1):
        got = parser.parse(payload, observed_ns)
        assert not parser.full
        want = parse_qstat_jobs(payload, cluster="bench", zone=ZONE, observed_ns=observed_ns)
        assert got == want, "the incremental parse differs from the full parse"


if __name__ == "__main__":
    main()
