"""``collectbus run`` then ``collectbus host``, and a run killed with SIGKILL."""

from __future__ import annotations

import json
import random
import signal
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from collectbus.store import open as open_store
from tests.integration.cli_helpers import collectbus, collectbus_env, start_collectbus

pytestmark = pytest.mark.slow


def test_run_then_host_rates(tmp_path: Path, store_url: str) -> None:
    env = collectbus_env(tmp_path, store_url)
    run = collectbus("run", "--duration", "3s", "--interval", "500ms", cwd=tmp_path, env=env)
    assert run.returncode == 0, run.stderr
    assert "samples stored" in run.stdout
    host = collectbus("host", "--since", "5m", "--format", "json", cwd=tmp_path, env=env)
    assert host.returncode == 0, host.stderr
    rows = json.loads(host.stdout)
    assert len(rows) >= 3
    rated = [r for r in rows if r["cpu_percent"] is not None]
    assert rated, rows
    for row in rated:
        assert 0.0 <= row["cpu_percent"] <= 100.0
        assert row["mem_used_bytes"] > 0
        assert row["net_rx_bytes_per_s"] >= 0
    csv = collectbus("host", "--since", "5m", "--format", "csv", cwd=tmp_path, env=env)
    assert csv.stdout.splitlines()[0].startswith("time,")
    table = collectbus("host", "--since", "5m", cwd=tmp_path, env=env)
    assert "cpu %" in table.stdout
    assert "disk read" in table.stdout


def test_collect_host_prints_one_sample(tmp_path: Path) -> None:
    env = collectbus_env(tmp_path, f"sqlite:///{tmp_path / 'unused.db'}")
    result = collectbus("collect", "host", "--format", "json", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    sample = json.loads(result.stdout)
    assert sample["mem"]["mem_total_bytes"] > 0
    assert sample["cpu"][0]["cpu"] == -1
    assert not (tmp_path / "unused.db").exists()


def test_bad_proc_root_is_one_line_error(tmp_path: Path) -> None:
    env = collectbus_env(tmp_path, f"sqlite:///{tmp_path / 'x.db'}")
    result = collectbus(
        "--proc-root", str(tmp_path / "nope"), "collect", "host", cwd=tmp_path, env=env
    )
    assert result.returncode == 1
    first = result.stderr.strip().splitlines()[0]
    assert first.startswith("collectbus: error: ")
    assert "Traceback" not in result.stderr


def _committed(url: str) -> tuple[int, int, int]:
    """(ok collections in collection_log, distinct cpu ticks, distinct mem ticks)."""
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            logged = conn.execute(
                sa.text(
                    "SELECT count(*) FROM collection_log WHERE source = 'host' AND status = 'ok'"
                )
            ).scalar_one()
            cpu = conn.execute(sa.text("SELECT count(DISTINCT time_ns) FROM host_cpu")).scalar_one()
            mem = conn.execute(sa.text("SELECT count(*) FROM host_mem")).scalar_one()
    finally:
        engine.dispose()
    return int(logged), int(cpu), int(mem)


def test_sigkill_during_collection_keeps_every_committed_sample(
    tmp_path: Path, store_url: str
) -> None:
    """Kill a collecting process again and again, at random moments of its work."""
    env = collectbus_env(tmp_path, store_url)
    rng = random.Random(20261124)
    seen = (0, 0, 0)
    for _ in range(5):
        # 20 ms ticks keep a write transaction open a good part of the time.
        proc = start_collectbus("run", "--interval", "20ms", cwd=tmp_path, env=env)
        try:
            deadline = time.monotonic() + 60
            target = seen[0] + 5
            while time.monotonic() < deadline:
                time.sleep(0.05)
                try:
                    seen = _committed(store_url)
                except (sa.exc.OperationalError, sa.exc.ProgrammingError):
                    continue  # the schema is being created
                if seen[0] >= target:
                    break
            assert seen[0] >= target, f"no new collections were committed: {seen}"
            time.sleep(rng.uniform(0, 0.1))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL

        store = open_store(store_url)
        try:
            status = store.status()
            assert status["revision"] == status["head"]
        finally:
            store.close()
        logged, cpu_ticks, mem_rows = _committed(store_url)
        # Everything seen before the kill is still there, and each logged
        # collection has its sample: log entry and rows commit together.
        assert logged >= seen[0]
        assert logged == cpu_ticks == mem_rows
        seen = (logged, cpu_ticks, mem_rows)
        if store_url.startswith("sqlite"):
            engine = sa.create_engine(store_url)
            with engine.connect() as conn:
                assert conn.execute(sa.text("PRAGMA integrity_check")).scalar_one() == "ok"
            engine.dispose()


def test_reading_a_missing_database_creates_nothing(tmp_path: Path) -> None:
    env = collectbus_env(tmp_path, f"sqlite:///{tmp_path / 'typo.db'}")
    for args in (("host",), ("db", "status"), ("calls",)):
        result = collectbus(*args, cwd=tmp_path, env=env)
        assert result.returncode == 1, args
        assert "no such database file" in result.stderr
    assert not (tmp_path / "typo.db").exists()


def test_reading_a_database_without_collectbus_tables(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    engine = sa.create_engine(f"sqlite:///{other}")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (x INTEGER)"))
    engine.dispose()
    env = collectbus_env(tmp_path, f"sqlite:///{other}")
    result = collectbus("host", cwd=tmp_path, env=env)
    assert result.returncode == 1
    assert "no collectbus data here" in result.stderr
