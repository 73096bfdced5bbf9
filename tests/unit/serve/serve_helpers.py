"""Recorded calls and their expected totals, reading an exposition back, and
promtool, for the serve tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import numpy as np
import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from collectbus.clock import NS_PER_S
from collectbus.pendingids import counted
from collectbus.records import CallRecord
from collectbus.serve.counting.tally import DURATION_BUCKETS_S, Tally, Totals

T0 = 1_700_000_000 * NS_PER_S
HANDLERS = ("get_user", "db.query", "render")

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample of a text exposition, keyed by name and labels."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; 0 if the series is absent (a counter not yet seen)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def counters(samples: Samples) -> Samples:
    """The samples that must never go down: counters, histogram counts, sums and buckets."""
    return {
        key: v
        for key, v in samples.items()
        if key[0].endswith(("_total", "_count", "_sum", "_bucket"))
    }


def promtool() -> str:
    """The promtool binary; skips without it, fails when CI=true."""
    path = shutil.which("promtool")
    if path is None:
        reason = "promtool is not installed (Debian: apt-get install prometheus)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"promtool is required when CI=true: {reason}")
        pytest.skip(reason)
    return path


def promtool_check(text: str) -> None:
    """Assert that ``promtool check metrics`` finds no problem in the exposition."""
    checked = subprocess.run(
        [promtool(), "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.strip() == "", checked.stdout


def call_records(start: int, n: int) -> list[CallRecord]:
    """n calls over three handlers, every fifth one failing, durations from 50 µs to 20 s."""
    rng = np.random.default_rng(start)
    elapsed = (10 ** rng.uniform(4.7, 10.3, n)).astype(np.int64)
    return [
        CallRecord(
            handler=HANDLERS[(start + i) % 3],
            qualname="app.handler",
            host="h",
            pid=1,
            thread_id=1,
            started_ns=T0 + (start + i) * 1000,
            elapsed_ns=int(elapsed[i]),
            error_type="ValueError" if (start + i) % 5 == 0 else None,
        )
        for i in range(n)
    ]


def expected_totals(records: list[CallRecord]) -> dict[tuple[str, ...], Totals]:
    """Totals computed here from the records alone, independently of the SQL."""
    bounds = np.array([round(b * NS_PER_S) for b in DURATION_BUCKETS_S])
    out: dict[tuple[str, ...], Totals] = {}
    for r in records:
        key = (r.handler, "ok" if r.error_type is None else "error")
        item = out.setdefault(key, Totals(buckets=[0] * len(bounds)))
        item.count += 1
        item.sum_ns += r.elapsed_ns
        item.buckets = [
            n + int(r.elapsed_ns <= b) for n, b in zip(item.buckets, bounds, strict=True)
        ]
    return out


def settled(tally: Tally) -> dict[tuple[str, ...], Totals]:
    """The totals once every row now in the table is counted.

    On PostgreSQL a row whose id was skipped while its writer was still open
    is counted by a later update; that can take a few updates.
    """
    with tally.engine.connect() as conn:
        ids = [int(i) for i in conn.execute(sa.select(tally.table.c.id)).scalars()]
    for _ in range(400):
        totals = tally.update()
        if all(counted(tally.last_id, tally.pending, i) for i in ids):
            return totals
        time.sleep(0.05)
    raise AssertionError(f"{tally.table.name}: the rows present were not all counted")


def plain(
    totals: dict[tuple[str, ...], Totals],
) -> dict[tuple[str, ...], tuple[int, int, list[int]]]:
    return {k: (t.count, t.sum_ns, t.buckets) for k, t in totals.items()}
