"""A store table's rows deleted from the top and their ids handed out again.

SQLite gives a new row the highest id present plus one, so once the newest
counted rows are deleted, rows inserted later take their ids, below the
checkpoint, with nothing logged (the triggers log edits and deletes, not
inserts). Each case ends with the totals equal to an independent GROUP BY;
PostgreSQL, which never reuses an id, runs the same steps as a control.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text

from collectbus.aggregate import Aggregator
from collectbus.store import Store
from tests.integration.aggregate.oracle import oracle, stored
from tests.integration.aggregate.test_aggregate_property import _calls_spec, insert_call


def _delete_top(store: Store, n: int) -> None:
    with store.engine.begin() as conn:
        conn.execute(
            text("DELETE FROM calls WHERE id IN (SELECT id FROM calls ORDER BY id DESC LIMIT :n)"),
            {"n": n},
        )


def _insert(store: Store, handler: str, n: int, elapsed: int = 7) -> None:
    with store.engine.begin() as conn:
        for i in range(n):
            insert_call(conn, handler, elapsed + i, None)


@pytest.mark.parametrize(
    "steps",
    [
        # The case Hypothesis found: one row, counted, deleted, its id given again.
        [("insert", "get", 1), ("run",), ("delete_top", 1), ("insert", "put", 1)],
        # Several from the top, some of them given again, others not.
        [("insert", "get", 5), ("run",), ("delete_top", 3), ("insert", "put", 2)],
        # Given again, then edited: the edit's log carries the new row.
        [("insert", "get", 3), ("run",), ("delete_top", 2), ("insert", "put", 2), ("edit",)],
        # Given again and deleted again before the update.
        [
            ("insert", "get", 3),
            ("run",),
            ("delete_top", 1),
            ("insert", "put", 1),
            ("delete_top", 1),
        ],
        # Deleted from the top, given again, and new rows past the checkpoint too.
        [("insert", "get", 4), ("run",), ("delete_top", 2), ("insert", "put", 5)],
        # Retention from the bottom while the top is given again.
        [
            ("insert", "get", 6),
            ("run",),
            ("delete_bottom",),
            ("delete_top", 1),
            ("insert", "del", 1),
        ],
    ],
)
def test_rows_under_ids_given_again_are_counted(
    store: Store, steps: list[tuple[object, ...]]
) -> None:
    spec = _calls_spec(batch_rows=1000)
    with store.engine.begin() as conn:
        conn.execute(text("DELETE FROM calls"))
    agg = Aggregator(store, spec)
    agg.reset(backfill=True)
    try:
        for step in steps:
            if step[0] == "insert":
                _insert(store, step[1], step[2])
            elif step[0] == "run":
                agg.update()
            elif step[0] == "delete_top":
                _delete_top(store, step[1])
            elif step[0] == "delete_bottom":
                with store.engine.begin() as conn:
                    conn.execute(text("DELETE FROM calls WHERE id = (SELECT min(id) FROM calls)"))
            elif step[0] == "edit":
                with store.engine.begin() as conn:
                    conn.execute(
                        text(
                            "UPDATE calls SET elapsed_ns = elapsed_ns + 1000"
                            " WHERE id = (SELECT max(id) FROM calls)"
                        )
                    )
        agg.update()
        assert stored(store.engine, spec) == oracle(store.engine, spec)
        assert agg.refresh().mismatched_groups == 0
    finally:
        agg.close()
