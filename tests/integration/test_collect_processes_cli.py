"""``collectbus collect processes``: the top processes now, as a table, JSON or CSV."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

from tests.integration.cli_helpers import collectbus, collectbus_env

PIDS = Path(__file__).resolve().parents[1] / "data" / "procfs" / "pids-6.18"
ORACLE = json.loads((PIDS / "psutil_oracle.json").read_text())


def _run(tmp_path: Path, *args: str) -> str:
    proc = tmp_path / "proc"
    if not proc.exists():
        shutil.copytree(PIDS / "t1", proc)
    env = collectbus_env(tmp_path, f"sqlite:///{tmp_path / 'unused.db'}")
    done = collectbus(
        "--proc-root", str(proc), "collect", "processes", *args, cwd=tmp_path, env=env
    )
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "unused.db").exists()  # nothing stored
    return done.stdout


def test_json_rows_of_a_recorded_tree(tmp_path: Path) -> None:
    rows = json.loads(_run(tmp_path, "--format", "json", "--interval", "10ms"))
    by_pid = {row["pid"]: row for row in rows}
    assert sorted(by_pid) == sorted(int(pid) for pid in ORACLE["t1"]["processes"])
    odd = by_pid[ORACLE["pids"]["odd_name"]]
    assert odd["name"] == "(a) b)"
    assert odd["cpu_percent"] == 0.0  # the tree did not change between the two readings
    assert by_pid[1]["read_bytes"] is None
    for pid, want in ORACLE["t1"]["processes"].items():
        assert abs(by_pid[int(pid)]["rss_bytes"] - want["rss"]) <= 2 * ORACLE["page_size"]


def test_csv_and_table(tmp_path: Path) -> None:
    rows = list(csv.DictReader(io.StringIO(_run(tmp_path, "--format", "csv", "--top", "1"))))
    assert len(rows) == 2  # the top 1 by CPU and the top 1 by RSS
    assert {r["mem_rank"] for r in rows} == {"1", ""}
    table = _run(tmp_path, "--top", "2")
    assert "top processes" in table
    assert "postgres" in table  # the largest RSS of the recording
