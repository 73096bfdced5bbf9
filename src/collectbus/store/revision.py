"""The schema revision, read without Alembic.

Readers only compare the database's revision with the newest one this
package ships, and a new database is created here at that revision
(:func:`create_schema`); Alembic (a fifth of a second to import) is needed only to
migrate (:mod:`collectbus.store.migrate`). :data:`HEAD_REVISION` is the
revision of the newest migration script; a unit test checks it against
Alembic's own view of the scripts, so a new migration cannot leave it behind.
"""

from __future__ import annotations

from sqlalchemy import Column, Connection, MetaData, PrimaryKeyConstraint, String, Table

#: The newest migration in ``store/migrations/versions`` (Alembic's head).
HEAD_REVISION = "0015"

#: Alembic's table of the revision a database is at (its default name).
VERSION_TABLE = "alembic_version"


def read_revision(conn: Connection) -> str | None:
    """The revision the database is at, or None before the first migration.

    Two plain queries: does the version table exist, and what does it hold.
    A table holding several revisions (branches, which collectbus does not
    make) reads as their names joined by ``+``: no revision this package has.
    """
    if conn.dialect.name == "postgresql":
        found = conn.exec_driver_sql(
            "SELECT to_regclass(%(name)s) IS NOT NULL", {"name": VERSION_TABLE}
        ).scalar()
    else:
        found = conn.exec_driver_sql(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?)",
            (VERSION_TABLE,),
        ).scalar()
    if not found:
        return None
    rows = conn.exec_driver_sql(f"SELECT version_num FROM {VERSION_TABLE}").all()
    return "+".join(sorted(str(row[0]) for row in rows)) or None


def create_schema(conn: Connection) -> None:
    """Create every table of :mod:`collectbus.store.schema` in an empty database and
    record it at :data:`HEAD_REVISION`, in the caller's transaction.

    The version table is Alembic's own (``version_num VARCHAR(32)``, primary key
    ``alembic_version_pkc``), so later migrations find it as they expect.
    """
    from collectbus.store.schema import metadata

    metadata.create_all(conn)
    version = Table(
        VERSION_TABLE,
        MetaData(),
        Column("version_num", String(32), nullable=False),
        PrimaryKeyConstraint("version_num", name=f"{VERSION_TABLE}_pkc"),
    )
    version.create(conn)
    conn.execute(version.insert().values(version_num=HEAD_REVISION))
