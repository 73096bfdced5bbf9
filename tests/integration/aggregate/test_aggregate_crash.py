"""SIGKILL the aggregating process again and again while another process writes:
after a restart the totals equal a full GROUP BY (SQLite and PostgreSQL)."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from collectbus.aggregate import AggregateSpec
from collectbus.aggregate.checkpoint import load_checkpoint
from collectbus.store import open as open_store
from tests.integration.aggregate.oracle import oracle, stored
from tests.integration.cli_helpers import collectbus, collectbus_env, start_collectbus

CONFIG = """
[[aggregates]]
name = "calls_by_handler"
table = "calls"
keys = ["handler"]
measures = ["elapsed_ns"]
error_column = "error_type"
batch_rows = 50
"""
SPEC = AggregateSpec(
    name="calls_by_handler",
    table="calls",
    keys=("handler",),
    measures=("elapsed_ns",),
    error_column="error_type",
)
WRITER = Path(__file__).with_name("writer.py")
KILLS = 6


def _runs(url: str) -> int:
    store = open_store(url, migrate=False)
    try:
        with store.engine.connect() as conn:
            cp = load_checkpoint(conn, SPEC.name)
    finally:
        store.close()
    assert cp is not None
    return cp.runs


@pytest.mark.slow
def test_killed_follower_restarts_with_exact_totals(store_url: str, tmp_path: Path) -> None:
    (tmp_path / "collectbus.toml").write_text(CONFIG)
    env = collectbus_env(tmp_path, store_url)
    env["PYTHONPATH"] = str(Path(__file__).parents[3])
    first = collectbus("aggregate", "run", cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr
    stop = tmp_path / "stop-writing"
    writer = subprocess.Popen(
        [sys.executable, str(WRITER), store_url, str(stop), "7"], env=env, cwd=tmp_path
    )
    rng = random.Random(3)
    try:
        for _ in range(KILLS):
            follower = start_collectbus(
                "aggregate", "run", "--follow", "--interval", "20ms", cwd=tmp_path, env=env
            )
            # Kill it at a random moment once it is updating (start-up takes seconds).
            before = _runs(store_url)
            deadline = time.monotonic() + 60
            while _runs(store_url) == before and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(rng.random() * 0.3)
            assert follower.poll() is None, follower.communicate()[1]
            follower.send_signal(signal.SIGKILL)
            follower.communicate(timeout=10)  # reaps it and closes its pipes
            assert follower.returncode == -signal.SIGKILL
        assert writer.poll() is None, "the writer ended before the last kill"
        stop.touch()
        assert writer.wait(timeout=60) == 0
        # Every follower did work before it was killed, not only start up.
        assert _runs(store_url) > KILLS
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
    last = collectbus("aggregate", "run", "--format", "json", cwd=tmp_path, env=env)
    assert last.returncode == 0, last.stderr
    store = open_store(store_url, migrate=False)
    try:
        totals = stored(store.engine, SPEC)
        assert totals == oracle(store.engine, SPEC)
        assert sum(g["count"] for g in totals.values()) > 100
        refreshed = collectbus(
            "aggregate", "run", "--refresh", "--format", "json", cwd=tmp_path, env=env
        )
        assert refreshed.returncode == 0, refreshed.stderr
        assert '"mismatched": 0' in refreshed.stdout
    finally:
        store.close()
