"""Fixtures of the aggregate tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from collectbus.store import Store
from collectbus.store import open as open_store


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """The collectbus store in an empty database (SQLite, then PostgreSQL)."""
    s = open_store(store_url)
    yield s
    s.close()
