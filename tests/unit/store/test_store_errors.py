"""Database errors become one-line StoreErrors naming the database, with a hint."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from collectbus.errors import SchemaError, StoreError
from collectbus.store import mask_url
from collectbus.store import open as open_store
from collectbus.store.dberrors import classify


def test_mask_url_hides_the_password() -> None:
    assert mask_url("postgresql://u:s3cret@db:5432/x") == "postgresql://u:***@db:5432/x"


def test_missing_directory(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nope' / 'x.db'}"
    with pytest.raises(StoreError, match="cannot open the database file") as info:
        open_store(url)
    assert "nope" in str(info.value)
    assert "\n" not in str(info.value)
    assert "directory" in info.value.hint


def test_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    path.write_bytes(b"this is not sqlite" * 1000)
    with pytest.raises(StoreError, match="not a SQLite database"):
        open_store(f"sqlite:///{path}")


def test_unsupported_urls() -> None:
    with pytest.raises(StoreError, match="invalid database URL"):
        open_store("::nonsense::")
    with pytest.raises(StoreError, match="unsupported database"):
        open_store("mysql://u@h/db")
    with pytest.raises(StoreError, match="psycopg 3"):
        open_store("postgresql+psycopg2://u:pw@h/db")


def test_unreachable_postgres_names_the_server_and_masks_the_password() -> None:
    with pytest.raises(StoreError, match="cannot connect") as info:
        open_store("postgresql://someone:s3cret@127.0.0.1:1/nothing")
    message = str(info.value)
    assert "s3cret" not in message
    assert "127.0.0.1:1" in message
    assert "\n" not in message
    assert "server is running" in info.value.hint


def test_missing_schema_is_a_schema_error(tmp_path: Path) -> None:
    from collectbus.testing.hosts import make_host_sample

    store = open_store(f"sqlite:///{tmp_path / 'x.db'}", migrate=False)
    try:
        with pytest.raises(SchemaError, match="schema") as info:
            store.write([make_host_sample("h", 1_700_000_000 * 10**9)])
        assert "db init" in info.value.hint
    finally:
        store.close()


def test_classify_postgres_sqlstates() -> None:
    class Fake(Exception):
        sqlstate = "53100"

    error = classify("postgresql://db/x", "write", Fake("could not extend file"))
    assert type(error) is StoreError
    assert "disk is full" in str(error)
    Fake.sqlstate = "42P01"
    assert isinstance(classify("db", "read", Fake('relation "x" does not exist')), SchemaError)


def test_classify_sqlite_full() -> None:
    error = classify(
        "sqlite:///x.db", "write", sqlite3.OperationalError("database or disk is full")
    )
    assert str(error) == (
        "sqlite:///x.db: write failed: the database or its disk is full (database or disk is full)"
    )
    assert "free space" in error.hint
