"""What an aggregate is: a source table, group-by keys, measures and filters.

An :class:`AggregateSpec` is plain data, built from the ``[[aggregates]]``
config section or in code. Its source is either a table of the collectbus store
itself (``url`` None: ``calls``, ``job_history``, ...; not ``jobs``, whose
rows have no id, see :data:`collectbus.configfile.NOT_AGGREGATED`), where
triggers log the old values of edited and deleted rows, or a table of another SQLite or PostgreSQL
database (``sqltail``), opened read-only, where the rows that can still change
stay *open* in a ledger and are re-read on every update: the rows matching
``open_when`` (an SQL condition, e.g. ``status = 'running'``) or whose
``open_column`` is NULL, however old; without either, the newest
``open_rows`` rows (an approximation: a row that changes after it left that
window waits for a block check or the verifying refresh).

Every aggregate counts rows per group, and errors (rows whose
``error_column`` is non-NULL, or is one of ``error_values``); every measure
gets n, sum, min, max, mean and a quantile sketch.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from collectbus.configfile import aggregate_refusal
from collectbus.errors import ConfigError
from collectbus.urls import mask_url

if TYPE_CHECKING:
    from collectbus.config import Config

Scalar = str | int | float | bool

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,47}$")
_COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")

#: Rows of a read-only source that stay open (rescanned) by default.
DEFAULT_OPEN_ROWS = 10_000
#: Read-only sources: ids whose closed rows an update compares with the
#: source besides the newest block (a rotating sweep), by default.
DEFAULT_VERIFY_ROWS = 8_192
#: Read-only sources: seconds between verifying refreshes when none is configured.
DEFAULT_EXTERNAL_REFRESH_S = 3600.0
#: The longest ``open_when`` condition accepted.
MAX_OPEN_WHEN = 500
_UNSAFE_SQL = re.compile(r";|--|/\*|\*/")


@dataclass(frozen=True, slots=True)
class AggregateSpec:
    """One named, incrementally maintained ``GROUP BY``."""

    name: str
    table: str
    keys: tuple[str, ...] = ()
    measures: tuple[str, ...] = ()
    #: Another database to tail (read-only); None for the collectbus store.
    url: str | None = None
    id_column: str = "id"
    #: A column that grows when a row changes (a time or a version), if any.
    updated_column: str | None = None
    #: Only rows whose column equals one of the values are counted.
    filters: tuple[tuple[str, tuple[Scalar, ...]], ...] = ()
    error_column: str | None = None
    #: Empty: any non-NULL ``error_column`` is an error.
    error_values: tuple[Scalar, ...] = ()
    #: Read-only sources: the newest rows (by id) kept open and rescanned.
    open_rows: int = DEFAULT_OPEN_ROWS
    #: Seconds between full refreshes; None for never (only on demand).
    refresh_every_s: float | None = None
    #: PostgreSQL: how long an id skipped by the watermark is waited for.
    pending_s: float = 600.0
    #: At most this many new rows are read per transaction.
    batch_rows: int = 200_000
    #: Read-only sources: an SQL condition on the source table, true while a
    #: row can still change (``status = 'running'``).
    open_when: str | None = None
    #: Read-only sources: a column that is NULL while a row can still change
    #: (``finished_at``).
    open_column: str | None = None
    #: Read-only sources: ids of closed rows compared with the source per
    #: update, besides the newest block (see :mod:`~collectbus.aggregate.blocks`).
    verify_rows: int = DEFAULT_VERIFY_ROWS

    def __post_init__(self) -> None:
        where = f"aggregate {self.name!r}"
        if not _NAME.match(self.name):
            raise ConfigError(
                f"{where}: name: lower-case letters, digits and '_', starting with a letter"
            )
        for what, names in (
            ("table", (self.table,)),
            ("id_column", (self.id_column,)),
            ("keys", self.keys),
            ("measures", self.measures),
            ("updated_column", (self.updated_column,) if self.updated_column else ()),
            ("error_column", (self.error_column,) if self.error_column else ()),
            ("filters", tuple(c for c, _ in self.filters)),
            ("open_column", (self.open_column,) if self.open_column else ()),
        ):
            for column in names:
                if not _COLUMN.match(column):
                    raise ConfigError(f"{where}: {what}: {column!r} is not a plain column name")
        refusal = aggregate_refusal(self.table, external=self.external)
        if refusal is not None:
            raise ConfigError(f"{where}: {refusal}")
        if len(set(self.measures)) != len(self.measures):
            raise ConfigError(f"{where}: measures: a measure is named twice")
        if self.error_values and not self.error_column:
            raise ConfigError(f"{where}: error_values: needs error_column")
        if self.open_rows < 0 or self.batch_rows < 1:
            raise ConfigError(f"{where}: open_rows and batch_rows must be positive")
        if self.verify_rows < 0:
            raise ConfigError(f"{where}: verify_rows must be positive")
        if (self.open_when or self.open_column) and not self.external:
            raise ConfigError(
                f"{where}: open_when and open_column are for a source of another database"
                " (a table of the collectbus store has triggers)"
            )
        if self.open_when is not None and self.open_column:
            raise ConfigError(f"{where}: give open_when or open_column, not both")
        if self.open_when is not None:
            cond = self.open_when.strip()
            if not cond or len(cond) > MAX_OPEN_WHEN or _UNSAFE_SQL.search(cond):
                raise ConfigError(
                    f"{where}: open_when: one SQL condition on the table's columns, at most"
                    f" {MAX_OPEN_WHEN} characters, without ';' or comments"
                )

    @property
    def external(self) -> bool:
        """True when the source is another database, opened read-only."""
        return self.url is not None

    @property
    def source(self) -> str:
        """The source as shown in errors: database (password masked) and table."""
        where = mask_url(self.url) if self.url else "the collectbus store"
        return f"aggregate {self.name} ({where}, table {self.table})"

    @property
    def open_by_state(self) -> bool:
        """True when open rows are known from the data (``open_when`` or
        ``open_column``), not from their age."""
        return bool(self.open_when or self.open_column)

    @property
    def refresh_interval_s(self) -> float | None:
        """Seconds between full refreshes: the configured ones, or for a
        read-only source :data:`DEFAULT_EXTERNAL_REFRESH_S`."""
        if self.refresh_every_s is not None:
            return self.refresh_every_s
        return DEFAULT_EXTERNAL_REFRESH_S if self.external else None

    def columns(self) -> tuple[str, ...]:
        """Every source column the aggregate reads (those in ``open_when`` aside)."""
        cols = [self.id_column, *self.keys, *self.measures, *(c for c, _ in self.filters)]
        for extra in (self.updated_column, self.error_column, self.open_column):
            if extra:
                cols.append(extra)
        return tuple(dict.fromkeys(cols))

    def fingerprint(self) -> str:
        """A digest of what the totals depend on; a change needs a rebuild."""
        data = {
            "table": self.table,
            "url": mask_url(self.url) if self.url else None,
            "id": self.id_column,
            "keys": self.keys,
            "measures": self.measures,
            "filters": self.filters,
            "errors": [self.error_column, self.error_values],
        }
        # Only when set: the totals of an aggregate without them keep their digest.
        if self.open_when:
            data["open_when"] = self.open_when.strip()
        if self.open_column:
            data["open_column"] = self.open_column
        digest = hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode())
        return digest.hexdigest()[:16]


def _scalars(where: str, value: object) -> tuple[Scalar, ...]:
    values = value if isinstance(value, list | tuple) else [value]
    out: list[Scalar] = []
    for v in values:
        if not isinstance(v, str | int | float | bool):
            raise ConfigError(f"{where}: {v!r} is not a string or a number")
        out.append(v)
    if not out:
        raise ConfigError(f"{where}: give at least one value")
    return tuple(out)


def spec_from_mapping(data: dict[str, object], *, where: str = "aggregates") -> AggregateSpec:
    """An AggregateSpec from one validated ``[[aggregates]]`` entry."""
    name = str(data.get("name", ""))
    where = f"{where} ({name})" if name and name not in where else where
    filters_raw = data.get("filters") or {}
    if not isinstance(filters_raw, dict):
        raise ConfigError(f"{where}.filters: a table of column = value(s)")
    filters = tuple(
        (str(col), _scalars(f"{where}.filters.{col}", v)) for col, v in sorted(filters_raw.items())
    )
    error_values = data.get("error_values") or ()
    refresh = data.get("refresh_every")
    return AggregateSpec(
        name=name,
        table=str(data.get("table", "")),
        keys=tuple(str(k) for k in _as_list(data.get("keys"))),
        measures=tuple(str(m) for m in _as_list(data.get("measures"))),
        url=str(data["source"]) if data.get("source") else None,
        id_column=str(data.get("id_column") or "id"),
        updated_column=str(data["updated_column"]) if data.get("updated_column") else None,
        filters=filters,
        error_column=str(data["error_column"]) if data.get("error_column") else None,
        error_values=_scalars(f"{where}.error_values", error_values) if error_values else (),
        open_rows=int(str(data.get("open_rows", DEFAULT_OPEN_ROWS))),
        refresh_every_s=float(str(refresh)) if refresh is not None else None,
        batch_rows=int(str(data.get("batch_rows", 200_000))),
        open_when=str(data["open_when"]) if data.get("open_when") is not None else None,
        open_column=str(data["open_column"]) if data.get("open_column") else None,
        verify_rows=int(str(data.get("verify_rows", DEFAULT_VERIFY_ROWS))),
    )


def _as_list(value: object) -> list[object]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


def specs_from_config(config: Config, *, tailed_only: bool = False) -> list[AggregateSpec]:
    """Every ``[[aggregates]]`` entry of the configuration (or only those with a
    ``source``: tables of another database, see ``sqltail/README.md`` beside
    this module) as a spec; errors name the file, the entry and its name."""
    origin = f"{config.source}: " if config.source else ""
    return [
        spec_from_mapping(a.model_dump(), where=f"{origin}aggregates.{i} ({a.name})")
        for i, a in enumerate(config.aggregates)
        if a.source is not None or not tailed_only
    ]
