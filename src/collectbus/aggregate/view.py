"""Reading aggregates for exposition: CLI tables, JSON, a Prometheus exporter.

:func:`read_aggregates` needs only the store (no configuration): each
checkpoint records the keys and measures its totals were built with.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import select

from collectbus.aggregate.parts import load_groups
from collectbus.aggregate.sketch import LogSketch
from collectbus.aggregate.state import KeyValue, Number, key_from_json
from collectbus.store import Store
from collectbus.store.schema import checkpoints

#: The quantiles every measure reports.
QUANTILES = (0.5, 0.95, 0.99)


@dataclass(frozen=True, slots=True)
class MeasureView:
    """One measure of one group."""

    n: int
    sum: Number
    min: Number | None
    max: Number | None
    mean: float | None
    #: ``{0.5: p50, 0.95: p95, 0.99: p99}`` within 1 % relative error.
    quantiles: dict[float, float | None]
    #: ``(le, cumulative count)``, ending with ``(inf, n)``: a Prometheus histogram.
    buckets: list[tuple[float, int]]


@dataclass(frozen=True, slots=True)
class GroupView:
    keys: dict[str, KeyValue]
    count: int
    errors: int
    measures: dict[str, MeasureView]


@dataclass(frozen=True, slots=True)
class AggregateView:
    name: str
    source: str
    table: str
    key_names: tuple[str, ...]
    measure_names: tuple[str, ...]
    last_id: int
    runs: int
    mismatches: int
    updated_ns: int
    refreshed_ns: int | None
    groups: list[GroupView]
    #: A table of another database (no triggers: see :attr:`unverified`).
    external: bool = False
    #: When every counted row was last compared with the source (a refresh,
    #: or an update whose block check covered the whole table).
    verified_ns: int | None = None
    #: When a check or refresh last found a difference and repaired it.
    repaired_ns: int | None = None
    #: When the block sweep's last complete pass began (or the last
    #: verification, if later): every block of closed rows was compared with
    #: the source since then, so a delete, re-used id or edit of a closed row
    #: made before it is in the totals (found, and repaired).
    checked_ns: int | None = None

    @property
    def unverified(self) -> bool:
        """True when the totals may miss changes the incremental path cannot
        see (deletes, re-used ids or edits of closed rows of another
        database's table) made since the last verification: an update moved
        the totals after it. A table of the store is never: its triggers
        log every change."""
        if not self.external:
            return False
        return self.verified_ns is None or self.verified_ns < self.updated_ns


def _measure(
    sketch: LogSketch, n: int, total: Number, low: Number | None, high: Number | None
) -> MeasureView:
    return MeasureView(
        n=n,
        sum=total,
        min=low,
        max=high,
        mean=total / n if n else None,
        quantiles={q: sketch.quantile(q) for q in QUANTILES},
        buckets=sketch.cumulative(),
    )


def read_aggregates(store: Store, names: list[str] | None = None) -> list[AggregateView]:
    """Every aggregate (or those named) with its groups, sorted by name and key."""
    cp = checkpoints.c
    query = select(checkpoints).order_by(cp.name)
    if names:
        query = query.where(cp.name.in_(names))
    out: list[AggregateView] = []
    with store.engine.connect() as conn:
        heads = conn.execute(query).mappings().all()
        for head in heads:
            spec = json.loads(head["spec"])
            checks = json.loads(head["state"])
            keys = tuple(spec.get("keys", ()))
            measures = tuple(spec.get("measures", ()))
            groups = []
            stored = load_groups(conn, head["name"], measures)
            for key, state in sorted(stored.items()):
                groups.append(
                    GroupView(
                        keys=dict(zip(keys, key_from_json(key), strict=True)),
                        count=state.count,
                        errors=state.errors,
                        measures={
                            name: _measure(m.sketch, m.n, m.sum, m.min, m.max)
                            for name, m in zip(measures, state.measures, strict=True)
                        },
                    )
                )
            out.append(
                AggregateView(
                    name=head["name"],
                    source=str(spec.get("source", "")),
                    table=str(spec.get("table", "")),
                    key_names=keys,
                    measure_names=measures,
                    last_id=int(head["last_id"]),
                    runs=int(head["runs"]),
                    mismatches=int(head["mismatches"]),
                    updated_ns=int(head["updated_ns"]),
                    refreshed_ns=head["refreshed_ns"],
                    groups=groups,
                    external="sweep" in checks,
                    verified_ns=checks.get("verified_ns"),
                    repaired_ns=checks.get("repaired_ns"),
                    checked_ns=checks.get("checked_ns") or checks.get("verified_ns"),
                )
            )
    return out
