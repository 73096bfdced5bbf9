"""Alembic environment for the collectbus store.

collectbus drives Alembic from code (:mod:`collectbus.store.migrate`): the
caller passes an open connection, already inside a transaction, in
``config.attributes["connection"]``, so the schema change and the revision
stamp commit together. Run from the ``alembic`` command line instead, the URL
comes from the ``sqlalchemy.url`` option.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from collectbus.store.schema import metadata

# Any fixed number: held for the migration transaction so that several hosts
# starting against one new PostgreSQL database migrate it one at a time.
MIGRATION_LOCK_KEY = 0x636F6C6C  # "coll"


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})")
        context.run_migrations()


def _main() -> None:
    config = context.config
    if context.is_offline_mode():
        context.configure(
            url=config.get_main_option("sqlalchemy.url"),
            target_metadata=metadata,
            literal_binds=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from collectbus.store.engine import make_engine

    engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    try:
        with engine.begin() as conn:
            _run(conn)
    finally:
        engine.dispose()


_main()
