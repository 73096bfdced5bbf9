"""Fixtures shared by all tests.

``store_url`` runs a test once on a fresh SQLite file and once on a fresh
PostgreSQL database. The PostgreSQL server is taken from
``COLLECTBUS_TEST_PG_URL`` (default: the local server's ``test`` database);
each test gets its own ``collectbus_test_<random>`` database, dropped after.
Without a reachable server the PostgreSQL cases are skipped, except when
``CI=true``: then they fail, so that CI can never pass by skipping.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import psycopg
import pytest
from psycopg import sql

PG_ADMIN_URL = os.environ.get("COLLECTBUS_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL is required when CI=true: {reason}")
    pytest.skip(f"PostgreSQL is not reachable at {PG_ADMIN_URL}: {reason}")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``postgres`` every test that uses the ``postgres_url`` fixture, directly
    or through another fixture, so that ``-m "not postgres"`` leaves them all out
    (the PostgreSQL cases of ``store_url`` carry the mark through their param)."""
    for item in items:
        if "postgres_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(scope="session")
def _pg_admin_ok() -> str | None:
    """None if the server answers, else why not (checked once per session)."""
    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as err:
        return str(err).strip().splitlines()[0]
    return None


@pytest.fixture
def postgres_url(_pg_admin_ok: str | None) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, as a ``postgresql://`` URL."""
    if _pg_admin_ok is not None:
        _unavailable(_pg_admin_ok)
    name = f"collectbus_test_{secrets.token_hex(6)}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite file in the test's temporary directory (not created yet)."""
    return f"sqlite:///{tmp_path / 'collectbus.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest) -> str:
    """The URL of an empty database: a SQLite file, then a PostgreSQL database."""
    name = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    url: str = request.getfixturevalue(name)
    return url
