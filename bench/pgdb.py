"""A throw-away PostgreSQL database for a bench run, dropped afterwards.

The benches are run as scripts (``python bench/x.py``), so this folder is on
their import path: ``from pgdb import pg_database``.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql


@contextmanager
def pg_database(admin_url: str) -> Iterator[str]:
    """The URL of a new database on ``admin_url``'s server; dropped on exit."""
    name = f"collectbus_bench_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield f"{admin_url.rpartition('/')[0]}/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
