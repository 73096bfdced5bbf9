"""``[[aggregates]]`` over ``jobs`` is refused when the configuration is loaded,
with the reason and what to aggregate instead; that alternative, ``job_history``,
is kept incrementally and equals a full ``GROUP BY``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text

from collectbus.aggregate.spec import AggregateSpec
from collectbus.config import load_config
from collectbus.errors import ConfigError
from collectbus.jobtrack.writer import TrackedStore
from collectbus.store import open as open_store
from collectbus.testing.schedulers import make_pbs_job
from tests.integration.cli_helpers import collectbus_env, collectbus_in_process

S = 10**9
T0 = 1_796_000_000 * S
REASON = "table 'jobs' cannot be aggregated incrementally: its rows have no id column"
JOBS_AGGREGATE = '[[aggregates]]\nname = "jobs_by_state"\ntable = "jobs"\nkeys = ["state"]\n'


def test_the_config_is_refused_at_load_naming_the_entry_and_the_reason(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(JOBS_AGGREGATE)
    with pytest.raises(ConfigError) as refused:
        load_config(path, env={})
    message = str(refused.value)
    assert message.startswith(f"{path}: aggregates.0: {REASON}")
    assert "aggregate job_history" in message
    # Even with an id column named: no column of jobs grows with each new row.
    path.write_text(JOBS_AGGREGATE + 'id_column = "submit_ns"\n')
    with pytest.raises(ConfigError, match=REASON):
        load_config(path, env={})


def test_a_jobs_table_of_another_database_is_that_databases_own(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(JOBS_AGGREGATE + f'source = "sqlite:///{tmp_path / "other.db"}"\n')
    (entry,) = load_config(path, env={}).aggregates
    assert entry.table == "jobs"


def test_a_spec_built_in_code_is_refused_too() -> None:
    with pytest.raises(ConfigError, match=f"aggregate 'by_state': {REASON}"):
        AggregateSpec(name="by_state", table="jobs", keys=("state",))


@pytest.mark.parametrize("command", [("aggregate", "run"), ("daemon", "run"), ("serve",)])
def test_commands_that_load_the_config_exit_2_in_one_line(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    config = tmp_path / "c.toml"
    config.write_text(JOBS_AGGREGATE)
    env = collectbus_env(tmp_path, f"sqlite:///{tmp_path / 'cb.db'}")
    env["COLLECTBUS_CONFIG"] = str(config)
    done = collectbus_in_process(*command, cwd=tmp_path, env=env)
    assert done.returncode == 2, done.stderr
    first, hint = done.stderr.splitlines()
    assert first.startswith(f"collectbus: error: {config}: aggregates.0: {REASON}")
    assert hint.startswith("  hint: ")
    assert not (tmp_path / "cb.db").exists()  # refused before anything was opened


def _collect(tracked: TrackedStore, step: int) -> None:
    """Ten jobs, one listing per minute: queued, then running from step n, done at n + 3."""
    now = T0 + step * 60 * S
    records = []
    for n in range(10):
        start, end = T0 + (n + 1) * 60 * S, T0 + (n + 4) * 60 * S
        state = "queued" if now < start else "running" if now < end else "completed"
        records.append(
            make_pbs_job(
                n, submit_ns=T0, observed_ns=now, state=state, queue=("a", "b")[n % 2],
                start_ns=start if now >= start else None, end_ns=end if now >= end else None,
            )
        )  # fmt: skip
    tracked.apply(records, complete=True, now_ns=now)


def test_job_history_instead_is_kept_incrementally_and_equals_a_group_by(
    tmp_path: Path, store_url: str
) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        '[[aggregates]]\nname = "state_changes"\ntable = "job_history"\n'
        'keys = ["field", "new_value"]\n'
    )
    env = collectbus_env(tmp_path, store_url)
    env["COLLECTBUS_CONFIG"] = str(config)
    with open_store(store_url) as store:
        tracked = TrackedStore(store)
        for rounds in (range(0, 5), range(5, 15)):  # built, then updated incrementally
            for step in rounds:
                _collect(tracked, step)
            done = collectbus_in_process("aggregate", "run", cwd=tmp_path, env=env)
            assert done.returncode == 0, done.stderr
        with store.engine.connect() as conn:
            expected = {
                (field, value): count
                for field, value, count in conn.execute(
                    text("SELECT field, new_value, count(*) FROM job_history GROUP BY 1, 2")
                )
            }
    shown = collectbus_in_process(
        "aggregate", "show", "state_changes", "--format", "json", cwd=tmp_path, env=env
    )
    assert shown.returncode == 0, shown.stderr
    got = {(r["field"], r["new_value"]): r["count"] for r in json.loads(shown.stdout)}
    assert got == expected
    assert expected[("state", "completed")] == 10
