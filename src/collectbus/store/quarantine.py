"""Values and rows the database refused: left out, kept with the reason, counted.

A collection is written whole or not at all while the database is away; but a
value that no column can hold must not stop the rest. Such a value is caught
in two places:

- **before the INSERT**, each value is checked against its column by the one
  value rule, :mod:`collectbus.values`: an integer outside int64, a float that
  is NaN or infinite, text that is not valid UTF-8 or holds a NUL character
  (PostgreSQL ``text`` cannot hold it; SQLite is held to the same rule). A
  refused value in a nullable column is stored as NULL; in a NOT NULL column
  its whole row is left out (:func:`screen`);
- **if the database still refuses** (a limit the check does not know, such as
  a 32-bit column), the collection is written again part by part, and a part
  that is refused row by row, each in a savepoint, so that only the refused
  rows are left out (:class:`Careful`).

Either way, each refused value or row is one row of the ``quarantine`` table
(host, source, table, field, the value as text, the reason), written in the
collection's own transaction, and counted in the collection's details
(``("quarantined", N)``). The store logs each cause (table, field, reason)
once, not once per row.
"""

from __future__ import annotations

import math
import operator
import struct
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import (
    BigInteger,
    Connection,
    Double,
    Float,
    Integer,
    Table,
    Text,
    insert,
    select,
)

from collectbus.store.dberrors import refusal
from collectbus.store.jobrows import TEXT_LIMIT, clean_text
from collectbus.store.rowcounts import rowid_range_query
from collectbus.store.schema import quarantine
from collectbus.values import INT64_MAX, INT64_MIN, fits_int64

RowTuple = tuple[object, ...]
Kind = Literal["int", "float", "text", "other"]

NOT_INT64 = "does not fit a 64-bit integer column"
NOT_FINITE = "is not a finite number"
NOT_UTF8 = "is not valid UTF-8 text"
HAS_NUL = "holds a NUL character"
ROW_LEFT_OUT = "the row was left out"
#: The collection detail that counts its quarantined values and rows.
QUARANTINED_DETAIL = "quarantined"
#: How many of the newest quarantined rows ``Store.status()`` shows.
LATEST = 5


@dataclass(frozen=True, slots=True)
class Refused:
    """One value (``field``) or row (``field`` None) the store left out."""

    table: str
    field: str | None
    value: object
    reason: str
    host: str | None = None
    time_ns: int | None = None

    @property
    def cause(self) -> tuple[str, str | None, str]:
        """What is logged once: the table, the field and the reason."""
        return self.table, self.field, self.reason


def value_text(value: object) -> str:
    """The value as the quarantine keeps it: numbers as they print, text quoted
    with its NUL and bad bytes escaped, within the text limit."""
    text = str(value) if isinstance(value, int | float) else repr(value)
    return clean_text(text, TEXT_LIMIT)[0]


def _kind(column_type: object) -> Kind:
    if isinstance(column_type, BigInteger | Integer):
        return "int"
    if isinstance(column_type, Double | Float):
        return "float"
    if isinstance(column_type, Text):
        return "text"
    return "other"


def _text_problem(value: str) -> str | None:
    if "\x00" in value:
        return HAS_NUL
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return NOT_UTF8
    return None


def value_problem(kind: Kind, value: object) -> str | None:
    """Why ``value`` cannot go into a column of ``kind``, or None."""
    if value is None or kind == "other":
        return None
    if kind == "int":
        if isinstance(value, int):
            return None if fits_int64(value) else NOT_INT64
        return f"is not an integer ({type(value).__name__})"
    if kind == "float":
        if isinstance(value, float):
            return None if math.isfinite(value) else NOT_FINITE
        if isinstance(value, int):
            return None
        return f"is not a number ({type(value).__name__})"
    if isinstance(value, str):
        return _text_problem(value)
    return f"is not text ({type(value).__name__})"


#: (host, time) of a row, for its quarantine entry.
Where = Callable[[RowTuple], tuple[str | None, int | None]]


def screen(
    table: Table,
    names: Sequence[str],
    rows: Sequence[RowTuple],
    where: Where,
    refused: list[Refused],
) -> list[RowTuple]:
    """The rows (tuples in ``names`` order) with each refused value made NULL,
    or the row left out when its column is NOT NULL; each refusal appended to
    ``refused``.

    The common case costs little: a row's integers are packed as int64 in one
    C call (``struct``), which fails on any value out of range (or None, or
    not an integer); only then, and for the floats and text, are values
    compared one by one.
    """
    columns = [table.c[name] for name in names]
    kinds = [_kind(c.type) for c in columns]
    ints = [i for i, k in enumerate(kinds) if k == "int"]
    floats = [i for i, k in enumerate(kinds) if k == "float"]
    texts = [i for i, k in enumerate(kinds) if k == "text"]
    pack = struct.Struct(f"{len(ints)}q").pack
    take = operator.itemgetter(*ints) if len(ints) > 1 else None
    out: list[RowTuple] = []
    for row in rows:
        try:
            if take is not None:
                pack(*take(row))
                checked: list[int] = []
            else:
                checked = ints
        except struct.error:
            checked = ints
        if _fine(row, checked, floats, texts):
            out.append(row)
            continue
        kept = _repair(table.name, columns, kinds, row, where, refused)
        if kept is not None:
            out.append(kept)
    return out


def _fine(row: RowTuple, ints: list[int], floats: list[int], texts: list[int]) -> bool:
    for i in ints:
        v = row[i]
        if v is not None and (type(v) is not int or not INT64_MIN <= v <= INT64_MAX):
            return False
    for i in floats:
        v = row[i]
        if v is not None and type(v) is not int and (type(v) is not float or not math.isfinite(v)):
            return False
    for i in texts:
        v = row[i]
        if v is not None and (type(v) is not str or _text_problem(v) is not None):
            return False
    return True


def _repair(
    table: str,
    columns: Sequence[object],
    kinds: Sequence[Kind],
    row: RowTuple,
    where: Where,
    refused: list[Refused],
) -> RowTuple | None:
    values = list(row)
    problems: list[tuple[int, str]] = []
    whole_row = False
    for i, (column, kind) in enumerate(zip(columns, kinds, strict=True)):
        problem = value_problem(kind, row[i])
        if problem is not None:
            problems.append((i, problem))
            if getattr(column, "nullable", True):
                values[i] = None
            else:
                whole_row = True
    host, time_ns = where(row)
    for i, problem in problems:
        reason = f"{problem}; {ROW_LEFT_OUT}" if whole_row else problem
        name = str(getattr(columns[i], "name", i))
        refused.append(Refused(table, name, row[i], reason, host, time_ns))
    return None if whole_row else tuple(values)


class Careful:
    """Writes the parts of a collection that the database refused as a whole:
    each part in a savepoint, and a refused part row by row, each row in a
    savepoint. What is still refused is appended to ``refused``.

    With ``careful=False`` it writes each part as it is, with no savepoint:
    the fast path, whose refusal aborts the transaction.
    """

    def __init__(self, conn: Connection, refused: list[Refused], *, careful: bool) -> None:
        self.conn = conn
        self.refused = refused
        self.careful = careful

    @contextmanager
    def _savepoint(self) -> Iterator[None]:
        with self.conn.begin_nested():
            yield

    def part(self, table: str, what: str, write: Callable[[], None]) -> bool:
        """Write one part that cannot be split into rows; False if it was refused."""
        if not self.careful:
            write()
            return True
        try:
            with self._savepoint():
                write()
        except Exception as err:
            reason = refusal(err)
            if reason is None:
                raise
            self.refused.append(Refused(table, None, what, reason))
            return False
        return True

    def rows(
        self,
        table: str,
        rows: Sequence[RowTuple],
        write: Callable[[Sequence[RowTuple]], None],
        where: Where,
    ) -> None:
        """Write rows; in careful mode, the refused ones are left out one by one."""
        if not rows:
            return
        if not self.careful:
            write(rows)
            return
        try:
            with self._savepoint():
                write(rows)
            return
        except Exception as err:
            if refusal(err) is None:
                raise
        for row in rows:
            try:
                with self._savepoint():
                    write([row])
            except Exception as err:
                reason = refusal(err)
                if reason is None:
                    raise
                host, time_ns = where(row)
                self.refused.append(Refused(table, None, row, reason, host, time_ns))


def entry_rows(
    refused: Sequence[Refused], *, source: str | None, stored_ns: int
) -> list[dict[str, object]]:
    """The ``quarantine`` rows of what was refused."""
    return [
        {
            "stored_ns": stored_ns,
            "time_ns": r.time_ns if r.time_ns is None or fits_int64(r.time_ns) else None,
            "host": None if r.host is None else clean_text(r.host, TEXT_LIMIT)[0],
            "source": None if source is None else clean_text(source, TEXT_LIMIT)[0],
            "table_name": r.table,
            "field": r.field,
            "value": value_text(r.value),
            "reason": clean_text(r.reason, TEXT_LIMIT)[0],
        }
        for r in refused
    ]


def write_entries(
    conn: Connection, refused: Sequence[Refused], *, source: str | None, stored_ns: int
) -> None:
    """Insert the quarantine rows, inside the collection's transaction."""
    if refused:
        conn.execute(insert(quarantine), entry_rows(refused, source=source, stored_ns=stored_ns))


def read_quarantine(conn: Connection, *, latest: int = LATEST) -> dict[str, object]:
    """How many rows the quarantine holds and the newest ``latest`` of them,
    newest first. Nothing is counted (a health check polls this): ``rows`` is
    the span of the ids, exact as long as no quarantine row was deleted or
    rolled back, else an upper bound."""
    q = quarantine.c
    high, low = conn.execute(rowid_range_query(quarantine, q.id)).one()
    rows = conn.execute(
        select(q.stored_ns, q.time_ns, q.host, q.source, q.table_name, q.field, q.value, q.reason)
        .order_by(q.id.desc())
        .limit(latest)
    ).mappings()
    return {
        "rows": 0 if high is None or low is None else high - low + 1,
        "latest": [dict(r) for r in rows],
    }


def with_count(details: Sequence[tuple[str, str]], n: int) -> tuple[tuple[str, str], ...]:
    """A collection's details with the count of its quarantined values and rows."""
    return (*details, (QUARANTINED_DETAIL, str(n))) if n else tuple(details)


def names_of(host_ids: Mapping[str, int]) -> dict[int, str]:
    """Host id to name, to name the host of a wide-table row."""
    return {i: name for name, i in host_ids.items()}
