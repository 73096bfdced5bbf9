"""Property: for any interleaving of inserts, late updates, deletes, crashes and
runs, the incremental totals equal a full GROUP BY, on SQLite and PostgreSQL.

A crash is an exception raised inside the update's write transaction, after
all its statements ran and before the commit (or earlier, while reading): the
transaction rolls back, as it would if the process had been killed there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, text

from collectbus.aggregate import AggregateSpec, Aggregator
from collectbus.aggregate import engine as engine_module
from collectbus.aggregate import parts as parts_module
from collectbus.clock import NS_PER_S, FakeClock
from collectbus.store import Store
from collectbus.store import open as open_store
from tests.integration.aggregate.oracle import oracle, stored

HANDLERS = ("get", "put", "del")
ERRORS = (None, None, "ValueError", "KeyError")


class SimulatedCrash(Exception):
    """Stands for the process dying at this point."""


def _calls_spec(batch_rows: int, filtered: bool = False) -> AggregateSpec:
    return AggregateSpec(
        filters=(("handler", ("get", "put")),) if filtered else (),
        name="calls_by_handler",
        table="calls",
        keys=("handler",),
        measures=("elapsed_ns",),
        error_column="error_type",
        batch_rows=batch_rows,
    )


def insert_call(conn: Connection, handler: str, elapsed: int, error: str | None) -> None:
    conn.execute(
        text(
            "INSERT INTO calls (host, pid, thread_id, handler, qualname, started_ns,"
            " elapsed_ns, error_type) VALUES ('h', 1, 1, :h, 'q', 0, :e, :err)"
        ),
        {"h": handler, "e": elapsed, "err": error},
    )


Op = tuple[Any, ...]
ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("insert"),
            st.integers(1, 4),
            st.sampled_from(HANDLERS),
            st.integers(0, 10**6),
            st.sampled_from(ERRORS),
        ),
        st.tuples(
            st.just("update"),
            st.integers(0, 50),
            st.sampled_from(HANDLERS),
            st.integers(0, 10**6),
            st.sampled_from(ERRORS),
        ),
        st.tuples(st.just("delete"), st.integers(0, 50)),
        st.tuples(st.just("run")),
        st.tuples(st.just("crash"), st.sampled_from(["reading", "before_commit"])),
        st.tuples(st.just("refresh")),
        st.tuples(st.just("late_begin"), st.sampled_from(HANDLERS), st.integers(0, 10**6)),
        st.tuples(st.just("late_commit")),
    ),
    max_size=30,
)


def _crashing(where: str) -> Callable[..., Any]:
    real_save, real_recompute = engine_module.save, engine_module.recompute_extremes

    def save(*args: Any, **kwargs: Any) -> Any:
        # Every write, but not PostgreSQL's COMMIT that would come with them.
        real_save(*args, **{**kwargs, "commit": False})
        raise SimulatedCrash("killed before commit")

    def recompute_extremes(*args: Any, **kwargs: Any) -> Any:
        real_recompute(*args, **kwargs)
        raise SimulatedCrash("killed while reading")

    return save if where == "before_commit" else recompute_extremes


def _row_ids(store: Store) -> list[int]:
    with store.engine.connect() as conn:
        return [r[0] for r in conn.execute(text("SELECT id FROM calls ORDER BY id"))]


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    steps=ops,
    batch_rows=st.sampled_from([2, 1000]),
    filtered=st.booleans(),
    fold_at=st.sampled_from([1, 3, parts_module.FOLD_AT]),
)
def test_incremental_equals_full_group_by(
    store: Store,
    steps: list[Op],
    batch_rows: int,
    filtered: bool,
    fold_at: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``fold_at``: sketches folded by nearly every update, every few, or as
    configured (deltas pile up over a whole example)."""
    spec = _calls_spec(batch_rows, filtered)
    monkeypatch.setattr(parts_module, "FOLD_AT", fold_at)
    monkeypatch.setattr(parts_module, "MAX_PARTS", fold_at * 2)
    with store.engine.begin() as conn:
        conn.execute(text("DELETE FROM calls"))
    agg = Aggregator(store, spec)
    # Built before any late transaction: installing the triggers waits for
    # transactions writing to the table.
    agg.reset(backfill=True)
    late: Connection | None = None
    try:
        for step in steps:
            kind = step[0]
            if kind == "insert":
                with store.engine.begin() as conn:
                    for i in range(step[1]):
                        insert_call(conn, step[2], step[3] + i, step[4])
            elif kind in ("update", "delete"):
                ids = _row_ids(store)
                if not ids:
                    continue
                rid = ids[step[1] % len(ids)]
                with store.engine.begin() as conn:
                    if kind == "delete":
                        conn.execute(text("DELETE FROM calls WHERE id = :id"), {"id": rid})
                    else:
                        conn.execute(
                            text(
                                "UPDATE calls SET handler = :h, elapsed_ns = :e,"
                                " error_type = :err WHERE id = :id"
                            ),
                            {"h": step[2], "e": step[3], "err": step[4], "id": rid},
                        )
            elif kind == "run":
                agg.update()
            elif kind == "refresh":
                assert agg.refresh().mismatched_groups == 0
            elif kind == "crash":
                with monkeypatch.context() as m:
                    target = "save" if step[1] == "before_commit" else "recompute_extremes"
                    m.setattr(engine_module, target, _crashing(step[1]))
                    with pytest.raises(SimulatedCrash):
                        agg.update()
            elif kind == "late_begin" and store.dialect == "postgresql" and late is None:
                # An id handed out now, committed after higher ids are counted.
                late = store.engine.connect()
                late.begin()
                insert_call(late, step[1], step[2], None)
            elif kind == "late_commit" and late is not None:
                late.commit()
                late.close()
                late = None
        if late is not None:
            late.commit()
            late.close()
            late = None
        agg.update()
        assert stored(store.engine, spec) == oracle(store.engine, spec)
        result = agg.refresh()
        assert result.mismatched_groups == 0
    finally:
        if late is not None:
            late.rollback()
            late.close()
        agg.close()


@pytest.mark.postgres
def test_postgres_row_committed_behind_the_watermark_is_counted(postgres_url: str) -> None:
    """PostgreSQL hands out ids before commit: id 1 commits after id 2 was counted."""
    spec = _calls_spec(1000)
    store = open_store(postgres_url)
    agg = Aggregator(store, spec)
    try:
        agg.update()
        with store.engine.connect() as late:
            late.begin()
            insert_call(late, "get", 7, None)  # takes an id, not yet visible
            with store.engine.begin() as conn:
                insert_call(conn, "put", 9, None)
            agg.update()
            assert stored(store.engine, spec) == oracle(store.engine, spec)
            late.commit()
        agg.update()
        totals = stored(store.engine, spec)
        assert totals == oracle(store.engine, spec)
        assert totals[("get",)]["count"] == 1
    finally:
        agg.close()
        store.close()


def _count_of(store: Store, spec: AggregateSpec) -> int:
    return sum(int(g["count"]) for g in stored(store.engine, spec).values())


@pytest.mark.postgres
def test_postgres_writer_open_longer_than_pending_s_is_given_up_on(postgres_url: str) -> None:
    """Past ``pending_s`` an id skipped by the watermark is no longer looked
    for: a writer that commits later is left to the verifying refresh, and
    nothing is counted twice."""
    spec = replace(_calls_spec(1000), pending_s=30)
    clock = FakeClock()
    store = open_store(postgres_url)
    agg = Aggregator(store, spec, clock=clock)
    try:
        agg.update()
        with store.engine.connect() as late:
            late.begin()
            insert_call(late, "get", 7, None)  # takes an id, not yet visible
            with store.engine.begin() as conn:
                insert_call(conn, "put", 9, None)
            agg.update()
            assert _count_of(store, spec) == 1
            clock.advance(31 * NS_PER_S)
            agg.update()
            late.commit()
        agg.update()
        assert _count_of(store, spec) == 1  # given up on
        assert agg.refresh().mismatched_groups == 1  # and repaired by the refresh
        assert stored(store.engine, spec) == oracle(store.engine, spec)
    finally:
        agg.close()
        store.close()


@pytest.mark.postgres
def test_postgres_writer_open_within_pending_s_is_counted(postgres_url: str) -> None:
    spec = replace(_calls_spec(1000), pending_s=30)
    clock = FakeClock()
    store = open_store(postgres_url)
    agg = Aggregator(store, spec, clock=clock)
    try:
        agg.update()
        with store.engine.connect() as late:
            late.begin()
            insert_call(late, "get", 7, None)
            with store.engine.begin() as conn:
                insert_call(conn, "put", 9, None)
            agg.update()
            clock.advance(29 * NS_PER_S)
            agg.update()
            late.commit()
        agg.update()
        assert _count_of(store, spec) == 2
        assert stored(store.engine, spec) == oracle(store.engine, spec)
    finally:
        agg.close()
        store.close()


def test_sqlite_ids_given_again_after_the_newest_rows_were_deleted(sqlite_url: str) -> None:
    """SQLite gives the highest id present plus one: once the newest rows are
    deleted their ids come back, on new rows that must be counted once."""
    spec = _calls_spec(1000)
    store = open_store(sqlite_url)
    agg = Aggregator(store, spec)
    try:
        with store.engine.begin() as conn:
            for i in range(30):
                insert_call(conn, HANDLERS[i % 3], i + 1, None)
        agg.update()
        with store.engine.begin() as conn:
            conn.execute(text("DELETE FROM calls WHERE id > 20"))
        agg.update()
        assert _count_of(store, spec) == 20
        with store.engine.begin() as conn:
            for i in range(4):
                insert_call(conn, "get", 100 + i, None)  # ids 21..24 again
        agg.update()
        assert _count_of(store, spec) == 24
        assert stored(store.engine, spec) == oracle(store.engine, spec)
    finally:
        agg.close()
        store.close()


def test_sqlite_id_given_again_before_the_next_update_is_a_new_row(sqlite_url: str) -> None:
    """The newest row deleted and its id given to a new row between two
    updates: the trigger logged the delete, so the row at that id is new."""
    spec = _calls_spec(1000)
    store = open_store(sqlite_url)
    agg = Aggregator(store, spec)
    try:
        agg.reset(backfill=True)
        with store.engine.begin() as conn:
            insert_call(conn, "get", 1, None)
            insert_call(conn, "put", 2, None)
        agg.update()
        with store.engine.begin() as conn:
            conn.execute(text("DELETE FROM calls WHERE id = 2"))
        with store.engine.begin() as conn:
            insert_call(conn, "del", 3, None)  # id 2 again
        agg.update()
        totals = stored(store.engine, spec)
        assert totals == oracle(store.engine, spec)
        assert set(totals) == {("get",), ("del",)}
    finally:
        agg.close()
        store.close()


def test_sqlite_id_deleted_before_the_last_update_given_again_is_counted(sqlite_url: str) -> None:
    """Row 1 deleted and counted out by one update; then every row deleted, so
    SQLite gives the next row id 1 again, below the checkpoint's last id, and
    no delete of id 1 is in the log any more: the insert is logged, and counted."""
    spec = _calls_spec(1000)
    store = open_store(sqlite_url)
    agg = Aggregator(store, spec)
    try:
        agg.reset(backfill=True)
        with store.engine.begin() as conn:
            insert_call(conn, "get", 1, None)
            insert_call(conn, "get", 2, None)
            conn.execute(text("DELETE FROM calls WHERE id = 1"))
        agg.update()
        with store.engine.begin() as conn:
            conn.execute(text("DELETE FROM calls WHERE id = 2"))
            insert_call(conn, "put", 3, None)
        assert _row_ids(store) == [1]  # the id of a row counted out long ago
        agg.update()
        totals = stored(store.engine, spec)
        assert totals == oracle(store.engine, spec)
        assert set(totals) == {("put",)}
        assert agg.refresh().mismatched_groups == 0
    finally:
        agg.close()
        store.close()
