"""``collectbus collect host`` and ``collect slurm``: one collection now, printed
with every value named (JSON) or one per row (CSV); nothing stored."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from tests.integration.cli_helpers import collectbus, collectbus_env

TESTS = Path(__file__).resolve().parents[1]
FC = TESTS / "data" / "procfs" / "fc-6.18-2cpu"
SLURM_FAKES = TESTS / "fakes" / "slurm"
SLURM_DATA = TESTS / "data" / "slurm"


def _proc(root: Path) -> Path:
    """A copy of the recorded /proc of tests/data/procfs/fc-6.18-2cpu."""
    proc = root / "proc"
    (proc / "net").mkdir(parents=True)
    for name in ("stat", "meminfo", "vmstat", "diskstats", "loadavg", "uptime"):
        (proc / name).write_bytes((FC / name).read_bytes())
    (proc / "net" / "dev").write_bytes((FC / "net_dev").read_bytes())
    return proc


def _collect_host(tmp_path: Path, fmt: str) -> str:
    env = collectbus_env(tmp_path, f"sqlite:///{tmp_path / 'unused.db'}")
    result = collectbus(
        "--proc-root", str(_proc(tmp_path)), "collect", "host", "--format", fmt,
        cwd=tmp_path, env=env, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "unused.db").exists()
    return result.stdout


def test_collect_host_json_names_meminfo_and_vmstat_values(tmp_path: Path) -> None:
    out = _collect_host(tmp_path, "json")
    assert out.startswith("{\n  ")  # indented, not one line
    sample = json.loads(out)
    assert sample["mem"]["mem_total_bytes"] == 24684084 * 1024
    assert sample["mem"]["mem_available_bytes"] == 24155168 * 1024
    assert sample["vmstat"]["nr_free_pages"] == 839574
    assert sample["vmstat"]["pgfault"] == 1740487
    assert sample["time"].endswith("Z")
    assert [c["cpu"] for c in sample["cpu"]] == [-1, 0, 1]


def test_collect_host_csv_is_one_value_per_row(tmp_path: Path) -> None:
    rows = list(csv.DictReader(io.StringIO(_collect_host(tmp_path, "csv"))))
    assert set(rows[0]) == {"section", "name", "value"}
    values = {(r["section"], r["name"]): r["value"] for r in rows}
    assert values["mem", "mem_total_bytes"] == str(24684084 * 1024)
    assert values["vmstat", "pgfault"] == "1740487"
    assert values["cpu1", "cpu"] == "1"
    assert ("net lo", "rx_bytes") in values


def _slurm_env(tmp_path: Path) -> dict[str, str]:
    env = collectbus_env(tmp_path, f"sqlite:///{tmp_path / 'unused.db'}")
    config = tmp_path / "collectbus.toml"
    config.write_text(f'[collectors.slurm]\nbin_dir = "{SLURM_FAKES}"\ncluster = "c"\n')
    env.update(COLLECTBUS_CONFIG=str(config), FAKE_SLURM_DATA=str(SLURM_DATA))
    return env


def test_collect_slurm_partitions_as_a_table_and_csv(tmp_path: Path) -> None:
    env = _slurm_env(tmp_path)
    table = collectbus("collect", "slurm", "partitions", cwd=tmp_path, env=env)
    assert table.returncode == 0, table.stderr
    assert "slurm partitions: 2" in table.stdout
    as_csv = collectbus("collect", "slurm", "partitions", "--format", "csv", cwd=tmp_path, env=env)
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert [r["queue"] for r in rows] == ["debug", "long"]
    assert rows[0]["enabled"] == "True"
    assert not (tmp_path / "unused.db").exists()


def test_collect_slurm_jobs_json_is_one_record_per_line(tmp_path: Path) -> None:
    result = collectbus(
        "collect", "slurm", "jobs", "--format", "json", cwd=tmp_path, env=_slurm_env(tmp_path)
    )
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 12
    assert {r["scheduler"] for r in records} == {"slurm"}
    assert "collectbus: cluster: c" in result.stderr


def test_collect_slurm_reservations_and_a_controller_that_fails_or_hangs(tmp_path: Path) -> None:
    env = _slurm_env(tmp_path)
    listed = collectbus("collect", "slurm", "reservations", cwd=tmp_path, env=env)
    assert listed.returncode == 0, listed.stderr
    assert "slurm reservations: 2" in listed.stdout
    assert "cb_maint" in listed.stdout
    env["FAKE_SLURM_RESERVATIONS"] = "fail"
    failed = collectbus("collect", "slurm", "reservations", cwd=tmp_path, env=env)
    assert failed.returncode == 1
    (line,) = failed.stderr.strip().splitlines()
    assert "scontrol show reservation -o" in line
    assert "exited with status 255" in line
    assert "Unable to contact slurm controller" in line
    (tmp_path / "collectbus.toml").write_text(
        (tmp_path / "collectbus.toml").read_text() + "timeout = 0.5\n"
    )
    env["FAKE_SLURM_RESERVATIONS"] = "hang"
    hung = collectbus("collect", "slurm", "reservations", cwd=tmp_path, env=env, timeout=30)
    assert hung.returncode == 1
    (line,) = hung.stderr.strip().splitlines()
    assert "scontrol show reservation -o" in line
    assert "0.5" in line
    assert not (tmp_path / "unused.db").exists()
