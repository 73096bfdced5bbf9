"""Database errors mapped to :class:`~collectbus.errors.StoreError` at the boundary.

Every message is one line that names the database (password masked) and what
was being done; ``hint`` says what to try. SQLite reports its conditions in
the message text, PostgreSQL in the SQLSTATE code (PostgreSQL manual,
Appendix A "Error Codes").
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import exc as sa_exc

from collectbus.errors import CollectBusError, SchemaError, StoreError

_INIT_HINT = "create or upgrade the schema with `collectbus db init`"

# (text in the SQLite message, what it means, hint)
_SQLITE = (
    (
        "database or disk is full",
        "the database or its disk is full",
        "free space on the disk holding the database, or compact and clean up old data",
    ),
    (
        "database is locked",
        "the database stayed locked past the busy timeout",
        "another process holds the write lock; find it or retry later",
    ),
    (
        "unable to open database file",
        "cannot open the database file",
        "check that the directory exists and is writable",
    ),
    ("file is not a database", "the file is not a SQLite database", "check the database URL"),
    ("readonly database", "the database is read-only", "check the file's permissions"),
    ("no such table", "the schema is missing or out of date", _INIT_HINT),
    ("no such column", "the schema is missing or out of date", _INIT_HINT),
)

# SQLSTATE -> (what it means, hint)
_POSTGRES = {
    "42P01": ("the schema is missing or out of date", _INIT_HINT),
    "42703": ("the schema is missing or out of date", _INIT_HINT),
    "3D000": (
        "the database does not exist",
        "create it first (createdb), then `collectbus db init`",
    ),
    "28P01": ("authentication failed", "check the user and the password in the environment"),
    "28000": ("authentication failed", "check the user and pg_hba.conf"),
    "53100": ("the server's disk is full", "free space on the database server"),
    "22003": ("a value is out of range for its column", "check the collector's values"),
    "40P01": ("deadlock detected", "retry the operation"),
    "57P01": ("the server is shutting down", "retry once it is back"),
}


class DriverError(Exception):
    """A driver exception raised outside SQLAlchemy (psycopg ``COPY``), to be mapped."""

    def __init__(self, orig: Exception) -> None:
        super().__init__(str(orig))
        self.orig = orig


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0].strip() if text else type(err).__name__


def classify(database: str, action: str, err: BaseException) -> StoreError:
    """The StoreError (or SchemaError) for a driver exception."""
    detail = _first_line(err)
    sqlstate = getattr(err, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate in _POSTGRES:
        what, hint = _POSTGRES[sqlstate]
        cls = SchemaError if sqlstate.startswith("42") else StoreError
        return cls(f"{database}: {action} failed: {what} ({detail})", hint=hint)
    lowered = detail.lower()
    for text, what, hint in _SQLITE:
        if text in lowered:
            cls = SchemaError if hint == _INIT_HINT else StoreError
            return cls(f"{database}: {action} failed: {what} ({detail})", hint=hint)
    if "connection" in lowered and ("failed" in lowered or "refused" in lowered):
        return StoreError(
            f"{database}: cannot connect ({detail})",
            hint="check that the server is running and the URL's host, port and database",
        )
    return StoreError(f"{database}: {action} failed: {detail}")


@contextmanager
def mapped_errors(database: str, action: str) -> Iterator[None]:
    """Turn SQLAlchemy, driver and OS errors inside the block into StoreErrors."""
    try:
        yield
    except CollectBusError:
        raise
    except sa_exc.DBAPIError as err:
        raise classify(database, action, err.orig or err) from err
    except DriverError as err:
        raise classify(database, action, err.orig) from err.orig
    except sa_exc.SQLAlchemyError as err:
        raise StoreError(f"{database}: {action} failed: {_first_line(err)}") from err
    except OverflowError as err:
        raise StoreError(
            f"{database}: {action} failed: a value does not fit a 64-bit integer column",
            hint="check the collector's values",
        ) from err
    except OSError as err:
        raise StoreError(
            f"{database}: {action} failed: {err.strerror or _first_line(err)}",
            hint="check the path and its permissions",
        ) from err
