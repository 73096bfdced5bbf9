"""``collectbus collect pbs``, run as a user would, against the fake PBS clients."""

from __future__ import annotations

import json
from pathlib import Path

from tests.fakes.pbs.scenario import FAKES, stage
from tests.integration.cli_helpers import collectbus, collectbus_env, collectbus_in_process

DATA = Path(__file__).resolve().parents[1] / "data" / "pbs"


def _env(tmp_path: Path, extra: str = "") -> dict[str, str]:
    env = collectbus_env(tmp_path, f"sqlite:///{tmp_path / 'unused.db'}")
    config = tmp_path / "collectbus.toml"
    config.write_text(
        f'[collectors.pbs]\nbin_dir = "{FAKES}"\ntimezone = "America/Chicago"\n{extra}'
    )
    env["COLLECTBUS_CONFIG"] = str(config)
    return env


def test_collect_pbs_jobs_prints_records_and_notes(tmp_path: Path) -> None:
    env = _env(tmp_path, "history = true\n")
    env.update(
        stage(
            tmp_path / "fake",
            "jobs_history",
            DATA / "qstat_fx_json__alcf_aurora_pbs_monitor_head.json",
        )
    )
    result = collectbus("collect", "pbs", "jobs", "--format", "json", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["state"] for r in records] == ["timeout", "timeout", "completed", "held"]
    assert records[0]["end_ns"] == 1753324679 * 10**9
    assert "collectbus: job_listing: complete" in result.stderr
    assert "collectbus: history: on" in result.stderr
    assert not (tmp_path / "unused.db").exists()


def test_collect_pbs_queues_as_a_table(tmp_path: Path) -> None:
    env = _env(tmp_path)
    env.update(stage(tmp_path / "fake", "queues", DATA / "qstat_Qf_json__ncar_derecho.json"))
    result = collectbus_in_process("collect", "pbs", "queues", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert "pbs queues: 14" in result.stdout
    cpu = next(line for line in result.stdout.splitlines() if line.split()[:1] == ["cpu"])
    assert [cell for cell in cpu.split() if cell != "│"][1:] == [
        "yes",
        "yes",
        "1,041",
        "165",
        "805",
        "70",
    ]


def test_a_server_that_cannot_be_reached_is_one_line_and_exit_1(tmp_path: Path) -> None:
    env = _env(tmp_path, 'server = "pbs9"\n')
    fake = tmp_path / "fake"
    env.update(stage(fake, "nodes", DATA / "pbsnodes_av_json__0nebody_pbs_exporter_node.json"))
    (fake / "server_name").write_text("pbs1")
    result = collectbus_in_process("collect", "pbs", "nodes", cwd=tmp_path, env=env)
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("collectbus: error: ")
    assert "pbsnodes -a -F json -s pbs9 on server pbs9: exited with status 255" in line


def test_collect_pbs_reservations_as_a_table_and_json(tmp_path: Path) -> None:
    env = _env(tmp_path)
    env.update(stage(tmp_path / "fake", "reservations", DATA / "reservations" / "pbs_rstat_f.txt"))
    table = collectbus_in_process("collect", "pbs", "reservations", cwd=tmp_path, env=env)
    assert table.returncode == 0, table.stderr
    listed = (DATA / "reservations" / "pbs_rstat_f.txt").read_text().count("Resv ID:")
    assert f"pbs reservations: {listed}" in table.stdout
    assert "climate_run" in table.stdout
    as_json = collectbus_in_process(
        "collect", "pbs", "reservations", "--format", "json", cwd=tmp_path, env=env
    )
    assert as_json.returncode == 0, as_json.stderr
    records = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert len(records) == listed
    first = next(r for r in records if r["resv_id"] == "R1042.pbs01")
    assert (first["name"], first["state"], first["native_state"]) == (
        "climate_run",
        "confirmed",
        "RESV_CONFIRMED",
    )
    assert not (tmp_path / "unused.db").exists()
