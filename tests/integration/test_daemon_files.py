"""The daemon's files are found from any folder, and ``daemon status`` reads
the database the daemon writes."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.integration.cli_helpers import assert_stopped, collectbus, collectbus_env

pytestmark = pytest.mark.slow

jsonschema = pytest.importorskip("jsonschema")

SCHEMAS = Path(__file__).resolve().parents[2] / "src" / "collectbus" / "cli" / "schemas"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    env = collectbus_env(tmp_path, f"sqlite:///{tmp_path / 'unused.db'}")
    for key in ("COLLECTBUS_DB_URL", "COLLECTBUS_PID_FILE", "COLLECTBUS_LOG_FILE"):
        del env[key]  # the defaults, as a user has them
    env["XDG_STATE_HOME"] = str(tmp_path / "state")
    return env


def test_status_from_another_folder_reads_the_daemons_database(
    tmp_path: Path, env: dict[str, str]
) -> None:
    here, elsewhere = tmp_path / "here", tmp_path / "elsewhere"
    here.mkdir()
    elsewhere.mkdir()
    started = collectbus("--db", "sqlite:///other.db", "daemon", "start", cwd=here, env=env)
    assert started.returncode == 0, started.stderr
    try:
        deadline = time.monotonic() + 30
        while True:
            status = collectbus("daemon", "status", "--format", "json", cwd=elsewhere, env=env)
            assert status.returncode == 0, status.stderr
            state = json.loads(status.stdout)
            if state["latest_collections"] or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert state["pid_file"] == str(tmp_path / "state" / "collectbus" / "collectbus.pid")
        assert state["log_file"] == str(tmp_path / "state" / "collectbus" / "collectbus.log")
        assert state["database"] == f"sqlite:///{here / 'other.db'}"
        assert state["started"].endswith("Z")
        assert state["latest_collections"][0]["started"].endswith("Z")
        assert not (elsewhere / "collectbus.db").exists()  # ./collectbus.db was not read
        schema = json.loads((SCHEMAS / "daemon-status.json").read_text())
        jsonschema.Draft202012Validator(schema).validate(state)

        table = collectbus("daemon", "status", cwd=elsewhere, env=env)
        assert "latest collections" in table.stdout
        assert str(tmp_path / "state" / "collectbus" / "collectbus.pid") in table.stdout
        csv = collectbus("daemon", "status", "--format", "csv", cwd=elsewhere, env=env)
        assert "latest_collections.1.source," in csv.stdout
    finally:
        stopped = collectbus("daemon", "stop", cwd=elsewhere, env=env)
    assert stopped.returncode == 0, stopped.stderr
    assert_stopped(stopped, tmp_path, env)


def test_not_running_names_the_pid_file_it_checked(tmp_path: Path, env: dict[str, str]) -> None:
    status = collectbus("daemon", "status", cwd=tmp_path, env=env)
    assert status.returncode == 3
    pid_file = tmp_path / "state" / "collectbus" / "collectbus.pid"
    assert status.stderr.strip() == f"not running (no daemon holds {pid_file})"
    as_json = collectbus("daemon", "status", "--format", "json", cwd=tmp_path, env=env)
    assert json.loads(as_json.stdout)["pid_file"] == str(pid_file)
