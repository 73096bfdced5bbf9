"""collection_log and quarantine are kept as long as [retention] says, like
the scheduler history: without a limit, a NIC that always prints 2^64 - 1
would add a quarantine row per collection for ever."""

from __future__ import annotations

import json
import time
from pathlib import Path

from sqlalchemy import func, insert, select

from collectbus.records import CollectionEvent
from collectbus.store import open as open_store
from collectbus.store.retention import NS_PER_DAY, RetentionLimits
from collectbus.store.schema import collection_log, quarantine
from tests.integration.cli_helpers import collectbus_env, collectbus_in_process

NOW = 1_800_000_000 * 1_000_000_000


def _fill(url: str, now_ns: int = NOW) -> None:
    """Collections, and a refused value each, 0.5, 2, 40 and 120 days old."""
    with open_store(url) as store:
        for age_days in (0.5, 2, 40, 120):
            started = now_ns - int(age_days * NS_PER_DAY)
            store.write(
                [CollectionEvent(source="host", host="h", started_ns=started, duration_ns=1,
                                 status="ok")]
            )  # fmt: skip
            with store.engine.begin() as conn:
                conn.execute(
                    insert(quarantine).values(
                        stored_ns=started, table_name="host_net", reason="out of range"
                    )
                )


def _counts(url: str) -> tuple[int, int]:
    with open_store(url) as store, store.engine.connect() as conn:
        logged = conn.execute(select(func.count()).select_from(collection_log)).scalar_one()
        kept = conn.execute(select(func.count()).select_from(quarantine)).scalar_one()
    return int(logged), int(kept)


def test_old_collection_log_and_quarantine_rows_are_deleted(store_url: str) -> None:
    _fill(store_url)
    limits = RetentionLimits(collection_log_days=30, quarantine_days=1)
    with open_store(store_url) as store:
        dry = store.cleanup(limits, now_ns=NOW, dry_run=True)
        assert dry.rows == {"collection_log": 2, "quarantine": 3}
        assert _counts(store_url) == (4, 4)
        done = store.cleanup(limits, now_ns=NOW)
    assert done.rows == dry.rows
    assert _counts(store_url) == (2, 1)


def test_db_cleanup_takes_the_limits_from_the_config_and_the_flags(
    tmp_path: Path, sqlite_url: str
) -> None:
    _fill(sqlite_url, time.time_ns())
    env = collectbus_env(tmp_path, sqlite_url)
    (tmp_path / "collectbus.toml").write_text("[retention]\ncollection_log_days = 1\n")
    env["COLLECTBUS_CONFIG"] = str(tmp_path / "collectbus.toml")
    done = collectbus_in_process(
        "db", "cleanup", "--quarantine-days", "1", "--dry-run", "--format", "json",
        cwd=tmp_path, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = {r["table"]: r["rows"] for r in json.loads(done.stdout)}
    # One day, from the config and from the flag: the rows 2, 40 and 120 days old.
    assert (rows["collection_log"], rows["quarantine"]) == (3, 3)
