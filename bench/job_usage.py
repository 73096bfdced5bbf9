"""Budget: the work of ``collectbus job ID --usage`` and of ``analyze
efficiency --since 30d`` within 2x their floor, measured in the same run
(docs/architecture.md, "Job usage").

The store: 100,000 Slurm jobs run back to back on 100 nodes over 30 days,
and one ``job_usage`` sample per node and minute (4.3 M rows), written with
the store's bulk writers (``bulk_insert``, COPY on PostgreSQL). The SQLite
store is built once into a cached file under the temporary directory and
reused (``--rebuild`` builds it again); the PostgreSQL one in a throw-away
database. The sizes actually used are printed.

- ``job ID --usage``: :func:`collectbus.analysis.jobusage.job_usage` (the
  job's record, its samples, the figures, the verdicts; host rates off: the
  bench store has no host samples) on a typical job (one node, about 40
  minutes), on the longest single-node job, and on a big job (a sixth of
  the nodes, the last quarter of the window); the floor is a plain SQL read
  of the job's row and its samples in its window. The budget is for the big
  job: on a small one both take a few milliseconds, and the fixed cost of
  the SQLAlchemy statements and of the figures (about 2 ms) is most of it.
- ``analyze efficiency --since 30d --by user``:
  :func:`collectbus.analysis.efficiency.job_efficiency` and
  :func:`~collectbus.analysis.efficiency.efficiency`; the floor is one plain
  statement over the same jobs and samples, grouped per job and host then
  per user in SQL.

Each figure is the median of ``--repeat`` runs: the machines are shared.

    python bench/job_usage.py
    python bench/job_usage.py --nodes 20 --days 7 --jobs 5000   # quicker
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
from sqlalchemy import text

from collectbus.analysis.efficiency import efficiency, job_efficiency
from collectbus.analysis.jobusage import job_usage
from collectbus.jobtrack.rows import job_row
from collectbus.records import JobRecord
from collectbus.store import Store
from collectbus.store import open as open_store
from collectbus.store.bulk import bulk_insert
from collectbus.store.jobrows import JOB_COLUMNS
from collectbus.store.jobusage import COLUMNS as SAMPLE_COLUMNS
from collectbus.store.jobusage import insert_job_usage
from pgdb import pg_database

BUDGET = 2.0
S = 10**9
MINUTE = 60 * S
T_END = 1_796_000_000 * S
CLUSTER = "bench"
USERS = tuple(f"user{i:03d}" for i in range(200))
BATCH = 200_000
BIG = "big"


def build(store: Store, nodes: int, days: int, jobs: int, seed: int = 1) -> tuple[int, int]:
    """Jobs run back to back on each node, one sample per node and minute;
    (jobs, samples) written."""
    rng = random.Random(seed)
    start_all = T_END - days * 86400 * S
    per_node = jobs // nodes
    minutes = days * 1440
    copy = store.dialect == "postgresql"
    written_jobs = written_samples = 0
    for node in range(nodes):
        host = f"n{node:04d}"
        # Split the node's minutes into per_node runs of random lengths.
        cuts = sorted(rng.sample(range(1, minutes), per_node - 1))
        bounds = [0, *cuts, minutes]
        job_rows, samples = [], []
        for k in range(per_node):
            first, last = bounds[k], bounds[k + 1]
            start = start_all + first * MINUTE
            end = start_all + last * MINUTE
            cores = rng.choice((1, 4, 16, 64))
            busy = rng.random()
            job_id = str(node * per_node + k + 1)
            record = JobRecord(
                cluster=CLUSTER, scheduler="slurm", job_id=job_id, submit_ns=start - MINUTE,
                observed_ns=end, state="completed", native_state="COMPLETED",
                user=rng.choice(USERS), account=f"proj{rng.randrange(40)}",
                queue=rng.choice(("batch", "long", "short")), exec_hosts=(host,),
                nodes_requested=1, cpus_requested=cores,
                mem_requested_bytes=rng.choice((4, 16, 64)) * 2**30, start_ns=start, end_ns=end,
            )  # fmt: skip
            job_rows.append(tuple(job_row(record, start - MINUTE, start, scrub=False,
                                          report=lambda *_: None)))  # fmt: skip
            mem = rng.randrange(2**28, 2**33)
            for m in range(first, last):
                t = start_all + m * MINUTE + 30 * S
                cpu = cores * busy * (t - start) / S
                samples.append(
                    (CLUSTER, job_id, host, t, "cgroup", cpu, mem, mem, m * 4096, m * 512, 2)
                )
        with store.engine.begin() as conn:
            bulk_insert(conn, "jobs", JOB_COLUMNS, job_rows, copy=copy)
            for i in range(0, len(samples), BATCH):
                insert_job_usage(conn, samples[i : i + BATCH], copy=copy)
        written_jobs += len(job_rows)
        written_samples += len(samples)
    big_jobs, big_samples = _big_job(store, nodes, days, copy)
    with store.engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
    return written_jobs + big_jobs, written_samples + big_samples


def _big_job(store: Store, nodes: int, days: int, copy: bool) -> tuple[int, int]:
    """One job over a sixth of the nodes for the last quarter of the window,
    beside theirs (as on nodes shared between jobs): ``job BIG --usage``."""
    hosts = tuple(f"n{n:04d}" for n in range(max(1, nodes // 6)))
    start, end = T_END - days * 86400 * S // 4, T_END
    record = JobRecord(
        cluster=CLUSTER, scheduler="slurm", job_id=BIG, submit_ns=start - MINUTE, observed_ns=end,
        state="completed", native_state="COMPLETED", user=USERS[0], account="proj0",
        queue="long", exec_hosts=hosts, nodes_requested=len(hosts), cpus_requested=64 * len(hosts),
        mem_requested_bytes=256 * 2**30 * len(hosts), start_ns=start, end_ns=end,
    )  # fmt: skip
    row = tuple(job_row(record, start - MINUTE, start, scrub=False, report=lambda *_: None))
    samples = [
        (CLUSTER, BIG, host, t, "cgroup", 30.0 * (t - start) / S, 2**34, 2**34, 0, 0, 64)
        for host in hosts
        for t in range(start + 30 * S, end, MINUTE)
    ]
    with store.engine.begin() as conn:
        bulk_insert(conn, "jobs", JOB_COLUMNS, [row], copy=copy)
        for i in range(0, len(samples), BATCH):
            insert_job_usage(conn, samples[i : i + BATCH], copy=copy)
    return 1, len(samples)


def median_s(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    """The median time of ``repeat`` runs after one unmeasured run (caches warm)."""
    out = fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def floor_job(store: Store, job_id: str) -> Callable[[], object]:
    def read() -> object:
        with store.engine.connect() as conn:
            job = conn.execute(
                text("SELECT * FROM jobs WHERE cluster = :c AND job_id = :j"),
                {"c": CLUSTER, "j": job_id},
            ).one()
            return conn.execute(
                text(
                    f"SELECT {', '.join(SAMPLE_COLUMNS)} FROM job_usage WHERE cluster = :c "
                    "AND job_id = :j AND time_ns >= :s AND time_ns < :e ORDER BY time_ns"
                ),
                {"c": CLUSTER, "j": job_id, "s": job.start_ns, "e": job.end_ns + 1},
            ).all()

    return read


FLOOR_EFFICIENCY = """
SELECT username, COUNT(*), SUM(cpu), SUM(req) FROM (
  SELECT j.username AS username, MAX(u.cpu_seconds) AS cpu,
         MAX(j.cpus_requested * ((COALESCE(j.end_ns, :now) - j.start_ns) / 1e9)) AS req
  FROM jobs j JOIN job_usage u ON u.cluster = j.cluster AND u.job_id = j.job_id
   AND u.time_ns >= j.start_ns AND u.time_ns <= COALESCE(j.end_ns, :now)
  WHERE j.start_ns IS NOT NULL AND j.last_seen_ns >= :since AND j.submit_ns < :until
  GROUP BY j.cluster, j.job_id, j.submit_ns, u.host
) per GROUP BY username
"""


def run(store: Store, label: str, sizes: tuple[int, int], days: int, repeat: int) -> bool:
    ok = True
    print(f"{label}: {sizes[0]:,} jobs, {sizes[1]:,} job_usage samples over {days} days")
    with store.engine.connect() as conn:
        longest = conn.execute(
            text(
                "SELECT job_id FROM jobs WHERE job_id <> :big "
                "ORDER BY end_ns - start_ns DESC LIMIT 1"
            ),
            {"big": BIG},
        ).scalar_one()
        typical = conn.execute(
            text(
                "SELECT job_id FROM jobs WHERE end_ns - start_ns BETWEEN :lo AND :hi "
                "ORDER BY job_id LIMIT 1"
            ),
            {"lo": 35 * MINUTE, "hi": 45 * MINUTE},
        ).scalar_one()
    probes = (("typical job", typical), ("longest single-node job", longest), ("big job", BIG))
    for name, job_id in probes:
        floor_s, rows = median_s(floor_job(store, job_id), repeat)
        work_s, usage = median_s(
            lambda j=job_id: job_usage(store, CLUSTER, j, host_rates=False), repeat
        )
        assert len(usage.sample_rows) == len(rows)  # type: ignore[attr-defined,arg-type]
        ratio = work_s / floor_s
        verdict = "no budget"
        if job_id == BIG:
            ok &= ratio <= BUDGET
            verdict = f"budget {BUDGET:.0f}x {'ok' if ratio <= BUDGET else 'OVER'}"
        print(
            f"  job {job_id} --usage ({name}, {len(rows):,} samples)  {work_s * 1e3:8.1f} ms; "  # type: ignore[arg-type]
            f"floor {floor_s * 1e3:.1f} ms; {ratio:.2f}x  {verdict}"
        )
    since, until, now = T_END - days * 86400 * S, T_END + S, T_END + S

    def ours() -> object:
        jobs = job_efficiency(store, since_ns=since, until_ns=until, now_ns=now)
        return efficiency(jobs, by="user")

    def floor() -> object:
        with store.engine.connect() as conn:
            return conn.execute(
                text(FLOOR_EFFICIENCY), {"now": now, "since": since, "until": until}
            ).all()

    floor_s, plain = median_s(floor, repeat)
    work_s, table = median_s(ours, repeat)
    assert len(table) == len(plain)  # type: ignore[arg-type]
    ratio = work_s / floor_s
    ok &= ratio <= BUDGET
    print(
        f"  analyze efficiency --since {days}d --by user ({len(table)} users)  "  # type: ignore[arg-type]
        f"{work_s * 1e3:8.1f} ms; floor (one GROUP BY) {floor_s * 1e3:.1f} ms; {ratio:.2f}x  "
        f"budget {BUDGET:.0f}x {'ok' if ratio <= BUDGET else 'OVER'}"
    )
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--rebuild", action="store_true", help="build the cached SQLite store again"
    )
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--no-pg", action="store_true", help="SQLite only")
    args = parser.parse_args()
    cache = Path(tempfile.gettempdir()) / (
        f"collectbus-bench-job-usage-{args.nodes}n-{args.days}d-{args.jobs}j.db"
    )
    if args.rebuild or not cache.exists():
        partial = cache.with_suffix(".building")
        partial.unlink(missing_ok=True)
        started = time.perf_counter()
        with open_store(f"sqlite:///{partial}") as store:
            build(store, args.nodes, args.days, args.jobs)
        partial.rename(cache)
        print(f"built {cache} in {time.perf_counter() - started:.0f} s")
    with open_store(f"sqlite:///{cache}") as store, store.engine.connect() as conn:
        sizes = (
            conn.execute(text("SELECT COUNT(*) FROM jobs")).scalar_one(),
            conn.execute(text("SELECT COUNT(*) FROM job_usage")).scalar_one(),
        )
    print(f"SQLite store: {cache} ({cache.stat().st_size / 2**20:,.0f} MiB)")
    with open_store(f"sqlite:///{cache}") as store:
        ok = run(store, "SQLite", sizes, args.days, args.repeat)
    if args.no_pg:
        return 0 if ok else 1
    try:
        with pg_database(args.pg_url) as url, open_store(url) as store:
            started = time.perf_counter()
            pg_sizes = build(store, args.nodes, args.days, args.jobs)
            print(f"PostgreSQL store built in {time.perf_counter() - started:.0f} s")
            ok = run(store, "PostgreSQL", pg_sizes, args.days, args.repeat) and ok
    except psycopg.OperationalError as err:
        print(f"PostgreSQL: skipped, not reachable at {args.pg_url}: {err}".splitlines()[0])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
