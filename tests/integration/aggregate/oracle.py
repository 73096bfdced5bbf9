"""A full GROUP BY written independently of the engine, to compare against."""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import Engine, text

from collectbus.aggregate.parts import load_groups
from collectbus.aggregate.sketch import bucket_of
from collectbus.aggregate.spec import AggregateSpec


def oracle(engine: Engine, spec: AggregateSpec) -> dict[tuple[Any, ...], dict[str, Any]]:
    """Per group: count, errors, and n, sum, min, max, bucket counts per measure."""
    keys = ", ".join(spec.keys)
    where = " AND ".join(
        f"{col} IN ({', '.join(repr(v) for v in values)})" for col, values in spec.filters
    )
    cols = ", ".join([*spec.keys, *(spec.error_column or "NULL",), *spec.measures])
    query = f"SELECT {cols} FROM {spec.table}" + (f" WHERE {where}" if where else "")
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    nk = len(spec.keys)
    with engine.connect() as conn:
        rows = conn.execute(text(query)).all()
    for row in rows:
        key = tuple(row[:nk])
        err_value = row[nk]
        group = out.setdefault(
            key,
            {
                "count": 0,
                "errors": 0,
                **{m: {"n": 0, "sum": 0, "values": []} for m in spec.measures},
            },
        )
        group["count"] += 1
        is_error = err_value is not None and (
            not spec.error_values or err_value in spec.error_values
        )
        group["errors"] += int(is_error)
        for i, m in enumerate(spec.measures):
            v = row[nk + 1 + i]
            if v is not None:
                group[m]["n"] += 1
                group[m]["sum"] += v
                group[m]["values"].append(v)
    del keys
    for group in out.values():
        for m in spec.measures:
            values = group[m].pop("values")
            group[m]["min"] = min(values) if values else None
            group[m]["max"] = max(values) if values else None
            group[m]["sketch"] = dict(Counter(bucket_of(v) for v in values))
    return out


def stored(engine: Engine, spec: AggregateSpec) -> dict[tuple[Any, ...], dict[str, Any]]:
    """The engine's totals, in the oracle's shape."""
    import json

    with engine.connect() as conn:
        groups = load_groups(conn, spec.name, spec.measures)
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    for gkey, g in groups.items():
        out[tuple(json.loads(gkey))] = {
            "count": g.count,
            "errors": g.errors,
            **{
                name: {
                    "n": m.n,
                    "sum": m.sum,
                    "min": m.min,
                    "max": m.max,
                    "sketch": dict(m.sketch.counts),
                }
                for name, m in zip(spec.measures, g.measures, strict=True)
            },
        }
    return out
