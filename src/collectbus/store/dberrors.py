"""Database errors mapped to :class:`~collectbus.errors.StoreError` at the boundary.

Every message is one line that names the database (password masked) and what
was being done; ``hint`` says what to try. SQLite reports its conditions in
the message text, PostgreSQL in the SQLSTATE code (PostgreSQL manual,
Appendix A "Error Codes").

Two kinds of failure are told apart, because they call for opposite answers:

- the database **cannot be reached or cannot write now** (connection lost,
  server down, disk full, locked, no answer in time): a plain
  :class:`StoreError`; the same data can be written later, so a writer keeps
  it and retries;
- the database **refused the data** (a value out of range for its column, a
  constraint, a type or an encoding it cannot hold): a :class:`RefusedError`;
  retrying the same rows can never succeed, so a writer leaves those rows out
  (see :mod:`collectbus.store.quarantine`) and goes on with the rest. These
  are PostgreSQL's SQLSTATE classes 22 (data exception) and 23 (integrity
  constraint violation), the DB-API's ``DataError`` and ``IntegrityError`` of
  either driver, and a Python value the driver cannot convert at all (an
  integer past 64 bits, text that is not valid UTF-8).
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
    "40P01": ("deadlock detected", "retry the operation"),
    "57P01": ("the server is shutting down", "retry once it is back"),
    "57014": (
        "cancelled by the statement timeout (store.statement_timeout)",
        "the server is overloaded or a lock is held; see pg_stat_activity",
    ),
}


#: PostgreSQL SQLSTATE classes of refused data: data exception, integrity constraint.
_REFUSED_CLASSES = ("22", "23")
#: The DB-API (PEP 249) exception classes of refused data, in sqlite3 and psycopg alike.
_REFUSED_DBAPI = frozenset({"DataError", "IntegrityError"})
_REFUSED_HINT = "the rows were left out and kept in the quarantine table: collectbus db status"


class RefusedError(StoreError):
    """The database refused the data itself: writing it again cannot succeed."""


class DriverError(Exception):
    """A driver exception raised outside SQLAlchemy (psycopg ``COPY``), to be mapped."""

    def __init__(self, orig: Exception) -> None:
        super().__init__(str(orig))
        self.orig = orig


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0].strip() if text else type(err).__name__


def refused(err: BaseException) -> bool:
    """Whether a driver exception is a refusal of the data (see the module docstring)."""
    sqlstate = getattr(err, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate[:2] in _REFUSED_CLASSES:
        return True
    if isinstance(err, OverflowError | UnicodeError):
        return True
    return any(c.__name__ in _REFUSED_DBAPI for c in type(err).__mro__)


def refusal(err: BaseException) -> str | None:
    """The first line of a refusal (a driver's or SQLAlchemy's exception, or
    one of the Python errors a driver raises for a value it cannot convert),
    or None when ``err`` is not one: an outage, a bug."""
    if isinstance(err, sa_exc.DBAPIError):
        return refusal(err.orig) if err.orig is not None else None
    if isinstance(err, DriverError):
        return refusal(err.orig)
    if isinstance(err, RefusedError):
        return str(err)
    return _first_line(err) if refused(err) else None


def classify(database: str, action: str, err: BaseException) -> StoreError:
    """The StoreError (SchemaError, RefusedError) for a driver exception."""
    detail = _first_line(err)
    if refused(err):
        return RefusedError(
            f"{database}: {action} failed: the database refused a value ({detail})",
            hint=_REFUSED_HINT,
        )
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
        raise RefusedError(
            f"{database}: {action} failed: a value does not fit a 64-bit integer column",
            hint=_REFUSED_HINT,
        ) from err
    except UnicodeError as err:
        raise RefusedError(
            f"{database}: {action} failed: text that is not valid UTF-8 ({_first_line(err)})",
            hint=_REFUSED_HINT,
        ) from err
    except OSError as err:
        raise StoreError(
            f"{database}: {action} failed: {err.strerror or _first_line(err)}",
            hint="check the path and its permissions",
        ) from err
