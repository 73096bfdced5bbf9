"""``/api/aggregates``: every aggregate in the store as JSON.

The document is a list, one object per aggregate: ``name``, ``source``,
``table``, ``keys``, ``measures``, ``last_id``, ``runs``, ``mismatches``,
``updated`` (RFC 3339) and ``updated_ns``, ``refreshed_ns``, ``verified``
(false while changes the incremental path cannot see may be missing: see
:attr:`~collectbus.aggregate.AggregateView.unverified`), ``verified_ns``,
``repaired_ns``, ``checked_ns`` (when the block sweep's last full pass
began: changes of closed rows before it are in the totals), and ``groups``:
per group its ``keys`` (an object), ``count``, ``errors`` and per measure
``n``, ``sum``, ``min``, ``max``, ``mean``, ``p50``, ``p95`` and ``p99``: the
figures of ``collectbus aggregate show --format json``.
"""

from __future__ import annotations

from collectbus.aggregate import AggregateView
from collectbus.timefmt import iso_utc


def aggregates_document(views: list[AggregateView]) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for view in views:
        groups: list[dict[str, object]] = []
        for g in view.groups:
            groups.append(
                {
                    "keys": dict(g.keys),
                    "count": g.count,
                    "errors": g.errors,
                    "measures": {
                        name: {
                            "n": m.n,
                            "sum": m.sum,
                            "min": m.min,
                            "max": m.max,
                            "mean": m.mean,
                            "p50": m.quantiles.get(0.5),
                            "p95": m.quantiles.get(0.95),
                            "p99": m.quantiles.get(0.99),
                        }
                        for name, m in g.measures.items()
                    },
                }
            )
        out.append(
            {
                "name": view.name,
                "source": view.source,
                "table": view.table,
                "keys": list(view.key_names),
                "measures": list(view.measure_names),
                "last_id": view.last_id,
                "runs": view.runs,
                "mismatches": view.mismatches,
                "updated": iso_utc(view.updated_ns),
                "updated_ns": view.updated_ns,
                "refreshed_ns": view.refreshed_ns,
                "verified": not view.unverified,
                "verified_ns": view.verified_ns,
                "repaired_ns": view.repaired_ns,
                "checked_ns": view.checked_ns,
                "groups": groups,
            }
        )
    return out
