"""Readers compare schema revisions without Alembic, and agree with it."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine

from collectbus.errors import SchemaError
from collectbus.store import open as open_store
from collectbus.store.migrate import current_revision, head_revision, upgrade
from collectbus.store.revision import HEAD_REVISION, read_revision


def test_head_revision_is_the_newest_migration_script() -> None:
    """A new migration must move HEAD_REVISION with it, or this fails."""
    assert head_revision() == HEAD_REVISION


def test_read_revision_agrees_with_alembic(store_url: str) -> None:
    engine = create_engine(store_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.begin() as conn:
            assert read_revision(conn) is None
            assert current_revision(conn) is None
            upgrade(conn, "0005")
            assert read_revision(conn) == current_revision(conn) == "0005"
            upgrade(conn)
            assert read_revision(conn) == current_revision(conn) == HEAD_REVISION
    finally:
        engine.dispose()


def test_check_schema_names_the_revision_it_found(store_url: str) -> None:
    store = open_store(store_url)
    try:
        store.check_schema()  # at the head: no error
        with store.engine.begin() as conn:
            conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0012'")
        with pytest.raises(
            SchemaError, match=f"at revision 0012, this collectbus needs {HEAD_REVISION}"
        ):
            store.check_schema()
        assert store.status()["revision"] == "0012"
        assert store.status()["up_to_date"] is False
        with store.engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE alembic_version")
        with pytest.raises(SchemaError, match="no collectbus data here"):
            store.check_schema()
    finally:
        store.close()
