"""sqltail on PostgreSQL: an update reads the source in ONE statement, outside
any transaction, and falls back to a read in a transaction when that is not
enough; either way the totals equal an independent GROUP BY after every
update (``aggregate show``), through inserts, completions, edits and deletes
of open rows, writers whose transactions are still open, deletes of the
newest rows and retracted extremes."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, text

import collectbus.aggregate.driver as driver
import tests.integration.aggregate.test_sqltail_open as open_rows
from collectbus.aggregate import Aggregator
from collectbus.aggregate.engine import Aggregator as EngineAggregator
from collectbus.store import Store
from tests.integration.aggregate.test_sqltail_open import (
    complete_oldest,
    fill,
    group_by,
    insert_running,
    make_spec,
    run_sql,
    shown,
)

pytestmark = pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)

#: The fixture: an agent_invocations table in another database, and its writer.
source = open_rows.source


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """How each update read the source, in order: "one statement", then
    "transaction" when the read in a transaction followed it (or came alone)."""
    seen: list[str] = []
    real = EngineAggregator._step_external_read

    def step(self: EngineAggregator, guess: Any, *, verify: bool, fast: bool) -> Any:
        seen.append("one statement" if fast else "transaction")
        return real(self, guess, verify=verify, fast=fast)

    monkeypatch.setattr(EngineAggregator, "_step_external_read", step)
    return seen


def _exact(store: Store, writer: Engine, agg: Aggregator, round_: object) -> None:
    result = agg.update()
    assert (round_, result.kind, result.mismatched_groups) == (round_, "update", 0)
    assert (round_, shown(store)[0]) == (round_, group_by(writer))


def test_a_mixed_workload_read_in_one_statement_stays_exact(
    store: Store, source: tuple[str, Engine], reads: list[str]
) -> None:
    url, writer = source
    fill(writer, 5_000)
    with Aggregator(store, make_spec(url, open_when="status = 'running'")) as agg:
        agg.update()
        rounds: list[tuple[str, ...]] = [
            ("UPDATE agent_invocations SET agent_name = 'agent_7' WHERE id = 4462",),
            ("DELETE FROM agent_invocations WHERE id = 4559",),
            ("UPDATE agent_invocations SET finished_at = 3 WHERE id = 4656",),
            (
                "INSERT INTO agent_invocations (agent_name, status, duration_seconds)"
                " VALUES ('agent_2', 'ok', 7.5), ('agent_3', 'error', 0.5)",
            ),
            ("DELETE FROM agent_invocations WHERE id = 10",),  # closed: the sweep finds it
        ]
        for i, statements in enumerate(rounds):
            run_sql(writer, *statements)
            insert_running(writer, 5)
            complete_oldest(writer, 3, seed=i)
            result = agg.update()
            if i == len(rounds) - 1:
                # A closed row deleted: a block differs, repaired by a refresh.
                assert result.kind == "refresh"
                assert shown(store)[0] == group_by(writer)
                continue
            assert (i, result.kind, result.mismatched_groups) == (i, "update", 0)
            assert (i, shown(store)[0]) == (i, group_by(writer))
        # Every update after the first read in one statement, alone.
        assert reads.count("one statement") >= len(rounds)
        assert "transaction" not in reads[1:]


def test_ids_of_writers_still_open_stay_pending_and_are_counted_once(
    store: Store, source: tuple[str, Engine], reads: list[str]
) -> None:
    """A writer holds an id in an open transaction while later ids commit:
    the one statement finds the gap (its ids stay pending), then the row once
    committed, counted once."""
    url, writer = source
    fill(writer, 2_000)
    with Aggregator(store, make_spec(url, open_when="status = 'running'")) as agg:
        agg.update()
        with writer.connect() as held:
            tx = held.begin()
            held.execute(
                text(
                    "INSERT INTO agent_invocations (agent_name, status, duration_seconds)"
                    " VALUES ('agent_4', 'ok', 99.0)"
                )
            )
            insert_running(writer, 3)
            complete_oldest(writer, 2, seed=1)
            _exact(store, writer, agg, "in flight")
            cp = agg._saved
            assert cp is not None
            assert len(cp.pending) == 1
            lo, hi, _ = cp.pending[0]
            assert lo == hi < cp.last_id
            tx.commit()
        insert_running(writer, 2)
        _exact(store, writer, agg, "committed")
        cp = agg._saved
        assert cp is not None
        assert cp.pending == ()
        assert "transaction" not in reads[1:]


def test_the_newest_rows_deleted_and_an_extreme_retracted_read_in_a_transaction(
    store: Store, source: tuple[str, Engine], reads: list[str]
) -> None:
    """What one statement cannot finish: the newest rows deleted with nothing
    after, down into an older block (that block is read again), and an open
    row holding its group's largest value changed (the extreme is
    recomputed): read again in a transaction, exact."""
    url, writer = source
    fill(writer, 4_100)  # blocks of 4,096 ids: the newest rows in the second
    with Aggregator(store, make_spec(url, open_when="status = 'running'")) as agg:
        agg.update()
        agg.update()  # the first after a build reads the store's checkpoint
        insert_running(writer, 3)
        _exact(store, writer, agg, "inserted")
        assert reads[-1] == "one statement"
        before = len(reads)
        run_sql(writer, "DELETE FROM agent_invocations WHERE id > 4090")
        # Closed rows gone: their blocks differ, the aggregate is repaired.
        assert agg.update().kind == "refresh"
        assert shown(store)[0] == group_by(writer)
        assert reads[before : before + 2] == ["one statement", "transaction"]
        agg.update()
        # An open row holds the largest duration of its group, then loses it.
        run_sql(
            writer,
            "UPDATE agent_invocations SET duration_seconds = 1000.0, agent_name = 'agent_1'"
            " WHERE id = 3977",
        )
        _exact(store, writer, agg, "extreme set")
        run_sql(writer, "UPDATE agent_invocations SET duration_seconds = 1.0 WHERE id = 3977")
        _exact(store, writer, agg, "extreme left")
        assert reads[-2:] == ["one statement", "transaction"]
        insert_running(writer, 2)
        _exact(store, writer, agg, "after")
        assert reads[-1] == "one statement"


def test_the_one_statement_types_every_column_from_its_first_branch(
    store: Store, source: tuple[str, Engine]
) -> None:
    """Parts of different types at different columns: PostgreSQL types a
    UNION pair by pair (two NULLs make a text), so the statement's first
    branch types them all; each part comes back with its own values."""
    _url, writer = source
    fill(writer, 100)
    parts = [
        driver.Part("SELECT max(id) FROM agent_invocations", {}, at=1, width=1),
        driver.Part(
            "SELECT id, agent_name, duration_seconds FROM agent_invocations"
            " WHERE id > :lo AND id <= :hi ORDER BY id",
            {"lo": 95, "hi": 97},
            at=2,
            width=3,
        ),
        driver.Part("SELECT count(*), sum(id) FROM agent_invocations", {}, at=5, width=2),
        driver.Part("SELECT id FROM agent_invocations WHERE id > :lo", {"lo": 98}, at=1, width=1),
    ]
    with writer.connect() as conn, driver.autocommit(conn):
        found = driver.rows_at_once(conn, parts)
        alone = [driver.rows(conn, p.query, p.params) for p in parts]
    assert [sorted(f) for f in found] == [sorted(a) for a in alone]
    assert [len(f) for f in found] == [1, 2, 1, 2]
    assert found[1][1][1:] == ("agent_2", None)  # a NULL of its own, not padding
    with pytest.raises(ValueError, match="untyped"):
        driver.union_query([parts[0], parts[2]])
