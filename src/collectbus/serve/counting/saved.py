"""Counters kept in the store, so that a restarted ``collectbus serve`` continues them.

A metric source counts each stored row once from a watermark
(:mod:`collectbus.serve.counting.tally`), or folds the successive states of the
aggregates into counters that only grow (:mod:`collectbus.serve.counting.aggtrack`).
Held in memory alone, those counters would start again at a restart from
what the store holds then: rows deleted while the server was down
(retention, a purge), or a group that shrank, would bring a counter back
lower than Prometheus last read; Prometheus takes that for a reset, and
``increase()`` counts the whole value again.

So each source keeps what it has exported in the ``serve_counters`` table,
under the server's name (``collectbus serve --instance``): one row per series,
its key and its counters as JSON, and under the series ``[]`` the source's own
state (for a tally, the id it had counted up to and the ids it skipped and
still looks for, :mod:`collectbus.pendingids`). A restarted server loads
them at its first scrape and continues from there: it adds what was stored
since (the rows past the saved id; each aggregate's groups compared with
their saved last state) and takes nothing away for what was deleted. A
counter never goes down across a restart; a store that was reset (a new
database, so no saved state) starts from zero, a reset as for any exporter.

Writing is cheap: at most once per scrape, only the series that changed
since the last save, in one statement (an upsert of those rows), before the
scrape is answered, so what Prometheus read is in the store. A save that
fails (the database went away between the read and the write, a user that
may not write) is logged once per distinct error and the scrape is answered
all the same; its series are written with the next save that succeeds. Until
then a restart goes back to the last saved state.

Saved state that cannot be read back (edited by hand, or from a version whose
buckets differ) is reported in one line naming the table and the source; the
source starts from the rows present, as without saved state, and its first
save replaces every row it had.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Insert, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from collectbus.clock import Clock
from collectbus.errors import StoreError
from collectbus.store import Store
from collectbus.store.dberrors import mapped_errors
from collectbus.store.schema import serve_counters

log = logging.getLogger("collectbus.serve")

#: A series' key: label values (text), possibly nested in tuples.
SeriesKey = tuple[Any, ...]
#: The key under which a source keeps its own state.
STATE: SeriesKey = ()


def _as_lists(value: Any) -> Any:
    return [_as_lists(v) for v in value] if isinstance(value, tuple | list) else value


def _as_tuples(value: Any) -> Any:
    return tuple(_as_tuples(v) for v in value) if isinstance(value, list) else value


def encode_key(key: SeriesKey) -> str:
    """A series key as canonical JSON (tuples as arrays, no spaces)."""
    return json.dumps(_as_lists(key), separators=(",", ":"), ensure_ascii=False)


def decode_key(text: str) -> SeriesKey:
    """The series key :func:`encode_key` wrote (arrays back to tuples)."""
    key = _as_tuples(json.loads(text))
    if not isinstance(key, tuple):
        raise ValueError(f"series {text!r} is not a JSON array")
    return key


def _dumps(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class SavedSeries:
    """One metric source's series in ``serve_counters``, under one server's name."""

    def __init__(self, store: Store, instance: str, source: str, *, clock: Clock) -> None:
        self.store = store
        self.instance = instance
        self.source = source
        self.clock = clock
        self._upsert = self._statement()
        #: Encoded series and values not written yet (a save failed).
        self._pending: dict[str, str] = {}
        #: The next save first deletes every row of this source (see :meth:`save`).
        self._replace = False
        self._last_error: str | None = None

    def _statement(self) -> Insert:
        dialect_insert = postgresql.insert if self.store.dialect == "postgresql" else sqlite.insert
        stmt = dialect_insert(serve_counters)
        c = serve_counters.c
        return stmt.on_conflict_do_update(
            index_elements=[c.instance, c.source, c.series],
            set_={"value": stmt.excluded.value, "updated_ns": stmt.excluded.updated_ns},
        )

    def where(self) -> str:
        """``serve_counters`` and this source, for messages."""
        return f"serve_counters ({self.instance}, {self.source})"

    def load(self) -> dict[SeriesKey, Any]:
        """Every saved series of this source, its value decoded from JSON.

        Raises :class:`~collectbus.errors.StoreError` if the database cannot
        be read, and :class:`ValueError` for a row that is not what
        :meth:`save` writes.
        """
        c = serve_counters.c
        query = select(c.series, c.value).where(
            c.instance == self.instance, c.source == self.source
        )
        with (
            mapped_errors(self.store.url, f"read the saved {self.source} counters"),
            self.store.engine.connect() as conn,
        ):
            rows = conn.execute(query).all()
        try:
            return {decode_key(series): json.loads(value) for series, value in rows}
        except json.JSONDecodeError as err:
            raise ValueError(f"a value is not JSON: {err}") from err

    def save(self, changed: Mapping[SeriesKey, object], *, replace: bool = False) -> bool:
        """Write ``changed`` (and whatever a failed save left), in one statement.

        ``replace``: ``changed`` is every series the source has; the rows of
        others are deleted in the same transaction (saved state that was not
        used). Returns whether everything is saved. A database error is
        logged (once per distinct error), not raised: the series stay pending
        for the next save.
        """
        self._replace = self._replace or replace
        for key, value in changed.items():
            self._pending[encode_key(key)] = _dumps(value)
        if not self._pending:
            return True
        now = self.clock.time_ns()
        rows = [
            {
                "instance": self.instance,
                "source": self.source,
                "series": series,
                "value": value,
                "updated_ns": now,
            }
            for series, value in self._pending.items()
        ]
        try:
            with (
                mapped_errors(self.store.url, f"save the {self.source} counters"),
                self.store.engine.begin() as conn,
            ):
                if self._replace:
                    c = serve_counters.c
                    conn.execute(
                        delete(serve_counters).where(
                            c.instance == self.instance, c.source == self.source
                        )
                    )
                conn.execute(self._upsert, rows)
        except StoreError as err:
            if str(err) != self._last_error:
                log.warning(
                    "%s: counters not saved, a restart now would go back to the last "
                    "saved ones (trying again at the next scrape): %s",
                    self.source,
                    err,
                )
            self._last_error = str(err)
            return False
        if self._last_error is not None:
            log.info("%s: counters saved again", self.source)
        self._last_error = None
        self._pending.clear()
        self._replace = False
        return True
