"""Incremental aggregates with checkpoints (docs/architecture.md, "Aggregates").

An aggregate is a named ``GROUP BY`` over a source table: count, error count,
and per measure n, sum, min, max, mean and p50/p95/p99 from a mergeable
log-bucket sketch. It is kept up to date from the rows past a checkpoint, and
always equals a full recompute:

- :mod:`.spec`: what an aggregate is (:class:`AggregateSpec`);
- :mod:`.engine`: :class:`Aggregator` with ``update()``, ``refresh()``,
  ``reset(backfill=...)``;
- :mod:`.runner`: :func:`run_all` updates many, one failure not stopping the others;
- :mod:`.delta`: the −/+ deltas past a checkpoint (triggers or a ledger);
- :mod:`.checkpoint`: totals and checkpoint written in one transaction;
- :mod:`.sketch`: the quantile sketch, whose buckets are also a histogram.

Reading them, for an HTTP exporter or anything else::

    from collectbus.aggregate import read_aggregates

    for agg in read_aggregates(store):            # AggregateView, by name
        for group in agg.groups:                  # GroupView, by key
            group.keys                            # {"handler": "get_user"}
            group.count, group.errors
            m = group.measures["elapsed_ns"]      # MeasureView
            m.n, m.sum, m.min, m.max, m.mean
            m.quantiles[0.95]                     # p50, p95, p99 within 1 %
            m.buckets                             # [(le, cumulative count), ..., (inf, n)]

``buckets`` are cumulative counts with increasing upper bounds, ending with
``+Inf``: a Prometheus histogram's ``_bucket{le=...}`` series as they are;
``n`` is ``_count`` and ``sum`` is ``_sum``. ``agg.mismatches`` counts the
groups a full refresh had to repair.
"""

from __future__ import annotations

from collectbus.aggregate.engine import Aggregator, UpdateResult
from collectbus.aggregate.runner import RunOutcome, run_all
from collectbus.aggregate.spec import AggregateSpec
from collectbus.aggregate.view import AggregateView, GroupView, MeasureView, read_aggregates

__all__ = [
    "AggregateSpec",
    "AggregateView",
    "Aggregator",
    "GroupView",
    "MeasureView",
    "RunOutcome",
    "UpdateResult",
    "read_aggregates",
    "run_all",
]
