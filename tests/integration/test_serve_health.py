"""``/api/health`` on real SQLite and PostgreSQL: it estimates rows and never
counts a table, so monitoring can poll it on a store of any size."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event

from collectbus.clock import NS_PER_S
from collectbus.serve import ServeApp
from collectbus.store import Store
from collectbus.store import open as open_store
from collectbus.store.schema import COUNTED_TABLES
from collectbus.testing.hosts import make_host_sample

T0 = 1_700_000_000 * NS_PER_S


@pytest.fixture
def store(migrated_store_url: str) -> Iterator[Store]:
    with open_store(migrated_store_url) as s:
        s.write([make_host_sample("a", T0 + i * NS_PER_S) for i in range(5)])
        yield s


@pytest.fixture
def statements(store: Store) -> Iterator[list[str]]:
    """Every SQL statement the store's engine sends from now on."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        seen.append(statement)

    event.listen(store.engine, "before_cursor_execute", record)
    yield seen
    event.remove(store.engine, "before_cursor_execute", record)


def _counting(statements: list[str]) -> list[str]:
    return [s for s in statements if "count(" in s.lower()]


def test_health_estimates_rows_without_counting(store: Store, statements: list[str]) -> None:
    response = ServeApp(store, sources=[]).handle("GET", "/api/health")
    assert response.status == 200
    doc = json.loads(response.body)
    assert doc["store"]["rows_estimated"] is True
    assert doc["store"]["rows_method"] in ("rowid_range", "planner")
    assert list(doc["store"]["tables"]) == list(COUNTED_TABLES)
    assert statements, "the health check read nothing from the store"
    assert _counting(statements) == []


def test_the_recorder_sees_a_count(store: Store, statements: list[str]) -> None:
    """The check above can fail: the exact status is seen counting."""
    status = store.status(exact=True)
    assert status["rows_estimated"] is False
    assert len(_counting(statements)) == len(COUNTED_TABLES)
