"""Budget: a compacted host sample takes <= 150 bytes on disk.

See docs/architecture.md, "Ingest and chunks".

Anchor: the same sample as JSON (about 9.8 KB in a design measurement). Takes real
samples from the live /proc at an interval, writes them one cycle at a time
into a temporary SQLite store, compacts everything and measures.

    python bench/chunk_size.py                       # 600 samples at 1 s
    python bench/chunk_size.py --samples 60 --interval 0.1
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import socket
import sqlite3
import sys
import tempfile
import time
from collections import defaultdict
from typing import Any

from collectbus.collectors.base import CollectContext
from collectbus.collectors.host.collector import HostCollector
from collectbus.procfields import MEMINFO_COLUMNS, VMSTAT_COLUMNS
from collectbus.records import HostSample
from collectbus.store import open as open_store
from collectbus.testing.hosts import count_values

BUDGET_BYTES = 150
# The budget's "full sample": the tables of the six files. The periodic
# sources added to a sample since (PSI, uptime, cgroup) are reported apart.
SIX_FILE_TABLES = frozenset(
    {"host_cpu", "host_stat", "host_mem", "host_vmstat", "host_disk", "host_net", "host_load"}
)
# A host_chunks row besides its payload: 7 integers and the source name in a
# SQLite record (~60 B), plus its entry in the unique index (~40 B).
CHUNK_ROW_OVERHEAD = 100


def collect(proc: str, host: str, count: int, interval_s: float) -> list[HostSample]:
    collector = HostCollector(proc_root=proc)
    samples: list[HostSample] = []
    start = time.monotonic()
    for i in range(count):
        # Aligned ticks (start + i * interval), as the bus schedules them.
        delay = start + i * interval_s - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        samples += [
            r for r in collector.collect(CollectContext(host=host)) if isinstance(r, HostSample)
        ]
    return samples


def as_json(sample: HostSample) -> str:
    """The sample as a JSON document with field names, as an exporter would write it."""
    doc: dict[str, Any] = {"host": sample.host, "time_ns": sample.time_ns}
    doc["cpu"] = [r._asdict() for r in sample.cpu]
    doc["stat"] = sample.stat._asdict() if sample.stat else None
    doc["mem"] = dict(zip(MEMINFO_COLUMNS, sample.mem or (), strict=False))
    doc["vmstat"] = dict(zip(VMSTAT_COLUMNS, sample.vmstat or (), strict=False))
    doc["disk"] = [r._asdict() for r in sample.disk]
    doc["net"] = [r._asdict() for r in sample.net]
    doc["load"] = sample.load._asdict() if sample.load else None
    return json.dumps(doc)


def vacuumed_size(path: str) -> int:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("VACUUM")
    finally:
        conn.close()
    return os.path.getsize(path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=600)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between samples")
    parser.add_argument("--proc", default="/proc", help="procfs root")
    args = parser.parse_args()

    host = socket.gethostname()
    print(f"collecting {args.samples} samples from {args.proc} every {args.interval:g} s ...")
    samples = collect(args.proc, host, args.samples, args.interval)
    n = len(samples)
    with tempfile.TemporaryDirectory() as tmp:
        empty_path, path = os.path.join(tmp, "empty.db"), os.path.join(tmp, "store.db")
        open_store(f"sqlite:///{empty_path}").close()
        baseline = vacuumed_size(empty_path)
        url = f"sqlite:///{path}"
        with open_store(url) as store:
            for sample in samples:
                store.write([sample])
            stats = store.compact(now_ns=samples[-1].time_ns + 10 * 3600 * 10**9, older_than_s=0)
            with store.engine.connect() as conn:
                rows = conn.exec_driver_sql(
                    "SELECT source, count(*), sum(length(payload)) FROM host_chunks GROUP BY source"
                ).all()
        file_size = vacuumed_size(path)

    per_table: dict[str, int] = defaultdict(int)
    chunks = 0
    for source, count, size in rows:
        per_table[source] += int(size)
        chunks += int(count)
    extra = sum(b for t, b in per_table.items() if t not in SIX_FILE_TABLES)
    extra_chunks = sum(int(c) for t, c, _ in rows if t not in SIX_FILE_TABLES)
    payload = sum(per_table.values()) - extra
    chunks -= extra_chunks
    stored = payload + chunks * CHUNK_ROW_OVERHEAD
    six_files = [dataclasses.replace(s, psi=(), uptime=None, cgroup=None) for s in samples]
    values = sum(count_values(s) for s in six_files) / n
    json_size = sum(len(as_json(s)) for s in samples) / n
    per_sample = stored / n

    tables = ", ".join(f"{t[5:]} {b / n:.1f}" for t, b in sorted(per_table.items()))
    overhead = chunks * CHUNK_ROW_OVERHEAD / n
    report = [
        ("samples", f"{n} ({stats.rows} rows, {chunks} chunks)"),
        ("values per sample", f"{values:.0f}"),
        ("JSON per sample (anchor)", f"{json_size:,.0f} B"),
        ("payload per sample by table", tables),
        ("payload per sample, six files", f"{payload / n:.1f} B"),
        ("+ chunk rows, estimated", f"{overhead:.1f} B ({CHUNK_ROW_OVERHEAD} B x {chunks})"),
        ("stored per sample", f"{per_sample:.1f} B ({per_sample / values:.3f} B per value)"),
        ("file after VACUUM / samples", f"{file_size / n:.1f} B"),
        ("  less the empty schema", f"{(file_size - baseline) / n:.1f} B ({baseline:,} B empty)"),
        ("ratio JSON / stored", f"{json_size / per_sample:.0f}x"),
        (
            "PSI, uptime, cgroup (apart)",
            f"{(extra + extra_chunks * CHUNK_ROW_OVERHEAD) / n:.1f} B per sample",
        ),
    ]
    for label, value in report:
        print(f"{label:<30} {value}")
    ok = per_sample <= BUDGET_BYTES
    print(
        f"{'PASS' if ok else 'FAIL'}: {per_sample:.1f} B per sample vs budget <= {BUDGET_BYTES} B"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
