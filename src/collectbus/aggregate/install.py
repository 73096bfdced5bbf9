"""What an aggregate over a table of the collectbus store installs beside it:
the triggers that log each changed row's contribution, and (SQLite) the index
its full recompute reads; and the replacement of what an earlier version
installed.

Every function runs its statements in the caller's write transaction, so the
triggers change with nothing logged in between.
"""

from __future__ import annotations

from sqlalchemy import Connection

import collectbus.aggregate.driver as driver
from collectbus.aggregate.sql import AggregateSql


def install(conn: Connection, sql: AggregateSql) -> None:
    """The triggers and the index, replacing any the aggregate had."""
    for stmt in [*sql.drop_triggers(), *sql.create_triggers(), *sql.create_index()]:
        conn.exec_driver_sql(stmt)


def uninstall(conn: Connection, sql: AggregateSql) -> None:
    for stmt in [*sql.drop_triggers(), *sql.drop_index()]:
        conn.exec_driver_sql(stmt)


def outdated(conn: Connection, sql: AggregateSql) -> tuple[bool, bool]:
    """Whether the installed triggers, and the index, are an earlier version's."""
    installed = driver.rows(conn, *sql.trigger_definitions())
    triggers = not sql.triggers_current([str(r[0]) for r in installed])
    legacy = sql.legacy_index_query()
    index = legacy is not None and bool(driver.rows(conn, *legacy))
    return triggers, index


def upgrade(conn: Connection, sql: AggregateSql, *, triggers: bool, index: bool) -> None:
    """Replace what :func:`outdated` found."""
    statements = [*sql.drop_triggers(), *sql.create_triggers()] if triggers else []
    if index:
        statements += [*sql.drop_index(), *sql.create_index()]
    for stmt in statements:
        conn.exec_driver_sql(stmt)
