"""``collectbus aggregate`` end to end, with the sqltail sample configuration."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

import collectbus.aggregate as aggregate_package
from collectbus.aggregate.spec import specs_from_config
from collectbus.config import load_config
from collectbus.errors import ConfigError
from tests.integration.cli_helpers import collectbus, collectbus_env

SAMPLE = Path(aggregate_package.__file__).parent / "sqltail" / "sqltail.sample.toml"
AGENTS = ("planner", "coder", "reviewer")


def make_agents_db(path: Path, rows: int) -> None:
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE agent_invocations (id INTEGER PRIMARY KEY, timestamp REAL NOT NULL,"
        " agent_name TEXT NOT NULL, status TEXT NOT NULL, duration_seconds REAL,"
        " updated_at REAL NOT NULL)"
    )
    db.execute("CREATE INDEX ix_agent_invocations_updated_at ON agent_invocations (updated_at)")
    db.executemany(
        "INSERT INTO agent_invocations (timestamp, agent_name, status, duration_seconds,"
        " updated_at) VALUES (?, ?, ?, ?, ?)",
        [
            (i, AGENTS[i % 3], "error" if i % 17 == 0 else "ok", 0.25 * (i % 40) + 0.1, i)
            for i in range(rows)
        ],
    )
    db.commit()
    db.close()


def expected(path: Path) -> dict[str, tuple[int, int, float]]:
    db = sqlite3.connect(path)
    rows = db.execute(
        "SELECT agent_name, count(*), sum(status IN ('error', 'timeout')), max(duration_seconds)"
        " FROM agent_invocations GROUP BY agent_name"
    ).fetchall()
    db.close()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def shown(tmp_path: Path, env: dict[str, str]) -> dict[str, tuple[int, int, float]]:
    result = collectbus(
        "aggregate", "show", "agent_latency", "--format", "json", cwd=tmp_path, env=env
    )
    assert result.returncode == 0, result.stderr
    return {
        r["agent_name"]: (r["count"], r["errors"], r["duration_seconds_max"])
        for r in json.loads(result.stdout)
    }


@pytest.mark.slow
def test_sample_config_tails_agent_invocations(tmp_path: Path) -> None:
    (tmp_path / "collectbus.toml").write_text(SAMPLE.read_text())
    make_agents_db(tmp_path / "agents.db", 500)
    env = collectbus_env(tmp_path, f"sqlite:///{tmp_path / 'collectbus.db'}")
    first = collectbus("aggregate", "run", "--format", "json", cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr
    assert {r["aggregate"]: r["kind"] for r in json.loads(first.stdout)} == {
        "agent_latency": "build",
        "agent_status": "build",
    }
    assert shown(tmp_path, env) == expected(tmp_path / "agents.db")
    db = sqlite3.connect(tmp_path / "agents.db")
    db.execute(
        "UPDATE agent_invocations SET status = 'timeout', duration_seconds = 99, updated_at = 1e9 WHERE id = 3"
    )
    db.execute("DELETE FROM agent_invocations WHERE id = 10")
    db.execute(
        "INSERT INTO agent_invocations (timestamp, agent_name, status, duration_seconds, updated_at)"
        " VALUES (1, 'tester', 'ok', 2.5, 1e9)"
    )
    db.commit()
    db.close()
    again = collectbus("aggregate", "run", cwd=tmp_path, env=env)
    assert again.returncode == 0, again.stderr
    assert shown(tmp_path, env) == expected(tmp_path / "agents.db")
    listing = collectbus("aggregate", "list", "--format", "csv", cwd=tmp_path, env=env)
    assert listing.returncode == 0, listing.stderr
    assert (
        listing.stdout.splitlines()[0]
        == "aggregate,table,source,groups,last_id,runs,mismatches,updated"
    )
    assert listing.stdout.count("sqlite:///agents.db") == 2
    reset = collectbus("aggregate", "reset", "agent_latency", "--backfill", cwd=tmp_path, env=env)
    assert reset.returncode == 0, reset.stderr
    assert "rebuilt from 500 rows" in reset.stdout
    assert shown(tmp_path, env) == expected(tmp_path / "agents.db")
    refresh = collectbus("aggregate", "run", "--refresh", "--format", "json", cwd=tmp_path, env=env)
    assert [r["mismatched"] for r in json.loads(refresh.stdout)] == [0, 0]


def test_a_broken_source_is_one_line_and_the_others_go_on(tmp_path: Path) -> None:
    config = SAMPLE.read_text().replace(
        'name = "agent_status"\ntable = "agent_invocations"',
        'name = "agent_status"\ntable = "agent_runs"',
    )
    (tmp_path / "collectbus.toml").write_text(config)
    make_agents_db(tmp_path / "agents.db", 50)
    env = collectbus_env(tmp_path, f"sqlite:///{tmp_path / 'collectbus.db'}")
    result = collectbus("aggregate", "run", "--format", "json", cwd=tmp_path, env=env)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if "agent_status" in line]
    assert errors == [
        "collectbus: ERROR: aggregate agent_status (sqlite:///agents.db, table agent_runs):"
        " no table 'agent_runs' in the source database"
    ]
    assert shown(tmp_path, env) == expected(tmp_path / "agents.db")


def test_config_errors_name_the_key(tmp_path: Path) -> None:
    (tmp_path / "collectbus.toml").write_text(
        SAMPLE.read_text().replace("measures = [", "measure = [", 1)
    )
    env = collectbus_env(tmp_path, f"sqlite:///{tmp_path / 'collectbus.db'}")
    result = collectbus("aggregate", "run", cwd=tmp_path, env=env)
    assert result.returncode == 2
    assert "collectbus.toml: aggregates.0.measure: unknown key" in result.stderr


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[[aggregates]]\nname = "A b"\ntable = "t"\n', "aggregates.0.name"),
        ('[[aggregates]]\nname = "a"\n', "aggregates.0.table"),
        (
            '[[aggregates]]\nname = "a"\ntable = "t"\n[[aggregates]]\nname = "a"\ntable = "u"\n',
            "aggregates.1.name: 'a' is defined twice",
        ),
        (
            '[[aggregates]]\nname = "a"\ntable = "t"\nsource = "mysql://h/db"\n',
            "aggregates.0.source (a)",
        ),
        (
            '[[aggregates]]\nname = "a"\ntable = "t"\nsource = "postgresql://u:secret@h/db"\n',
            "a password in the URL",
        ),
        (
            '[[aggregates]]\nname = "a"\ntable = "t"\nrefresh_every = "soon"\n',
            "aggregates.0.refresh_every",
        ),
    ],
)
def test_aggregate_config_is_validated(tmp_path: Path, toml: str, message: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config(path, env={})


def test_sample_config_loads() -> None:
    config = load_config(SAMPLE, env={})
    specs = specs_from_config(config, tailed_only=True)
    assert [s.name for s in specs] == ["agent_latency", "agent_status"]
    assert specs[0].refresh_every_s == 3600.0
    assert specs[1].filters == (("status", ("ok", "error", "timeout")),)
