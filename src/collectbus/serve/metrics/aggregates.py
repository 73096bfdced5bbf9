"""``/metrics`` for the incremental aggregates (:mod:`collectbus.aggregate`).

Every scrape reads the aggregates from the store
(:func:`~collectbus.aggregate.read_aggregates`) and exposes, per aggregate and
group (labels ``aggregate`` and one per group key; ``measure`` for measures):

Counters, which never go down (:mod:`collectbus.serve.counting.aggtrack` says how):

- ``collectbus_aggregate_rows_total``: rows the group gained since the
  series began (the first read by a server of a store holding no saved
  counters for the group: they are kept in the store, so a restarted server
  continues them); ``collectbus_aggregate_rows_retracted_total``: rows it lost (a source row deleted, edited into another group or out of a filter);
- ``collectbus_aggregate_errors_total``, ``collectbus_aggregate_errors_retracted_total``:
  the same for error rows;
- ``collectbus_aggregate_measure`` (histogram: ``_bucket{le}``, ``_count``,
  ``_sum``): the values each measure gained, each observed once, on fixed
  bounds (:data:`BOUNDS`: 1, 2.5 and 5 times each power of ten from 0.001 to
  5e12, in the measure's own unit);
- ``collectbus_aggregate_mismatches_total{aggregate}``: groups a full refresh
  found differing from the incremental state, and repaired (for another
  database's table, also the refresh a block check of closed rows starts).

Why not the totals themselves as counters: an aggregate is a state, and a
retraction (a deleted or edited source row) lowers it. A counter that went
down would read as a reset to Prometheus and ``rate()`` would count the whole
total again. So the totals are gauges, and the counters accumulate the
gains and the losses separately, each only growing; ``rows_total -
rows_retracted_total`` is the change since the series began.

Gauges, equal to what ``collectbus aggregate show`` prints:

- ``collectbus_aggregate_current_rows``, ``collectbus_aggregate_current_errors``;
- ``collectbus_aggregate_measure_current_n``, ``..._current_sum_value``,
  ``..._min``, ``..._max``, ``..._mean``, ``..._p50``, ``..._p95``, ``..._p99``.

Per aggregate (label ``aggregate`` only):
``collectbus_aggregate_last_update_timestamp_seconds``,
``collectbus_aggregate_groups``, ``collectbus_aggregate_checkpoint_id``,
``collectbus_aggregate_unverified`` (1 while changes the incremental path
cannot see may be missing: another database's table updated since every
counted row was last compared with it),
``collectbus_aggregate_verified_timestamp_seconds``,
``collectbus_aggregate_checked_timestamp_seconds`` and
``collectbus_aggregate_repaired_timestamp_seconds`` (when last verified, when
the block sweep's last full pass began, and when last repaired; absent if
never), and
for a table of the store ``collectbus_aggregate_lag_rows`` (rows with an id
past the checkpoint; one indexed ``max(id)``). With the background updater
(:mod:`collectbus.serve.aggupdate`): ``collectbus_aggregate_updates_total``,
``collectbus_aggregate_update_errors_total`` and
``collectbus_aggregate_update_failing`` (1 while the last update failed).

Group keys become label names with anything but letters, digits and ``_``
replaced by ``_``; a name that would start with a digit or ``__``, or that is
``aggregate``, ``measure``, ``le`` or ``quantile``, gets the prefix ``key_``.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Sequence

from prometheus_client.metrics_core import Metric
from sqlalchemy import text

from collectbus.aggregate import AggregateSpec, AggregateView, read_aggregates
from collectbus.clock import NS_PER_S
from collectbus.errors import StoreError
from collectbus.serve.aggupdate import AggregateUpdater
from collectbus.serve.counting.aggtrack import AggregateCounters, AggregateTracker, group_labels
from collectbus.store import Store
from collectbus.store.dberrors import mapped_errors

log = logging.getLogger("collectbus.serve")

#: Histogram bounds, in each measure's own unit (+Inf implied).
BOUNDS: tuple[float, ...] = tuple(
    float(f"{m}e{k}") for k in range(-3, 13) for m in ("1", "2.5", "5")
)

_RESERVED = {"aggregate", "measure", "le", "quantile"}
_INVALID = re.compile(r"[^a-zA-Z0-9_]")

P = "collectbus_aggregate_"
# (name, type, help)
_FAMILIES = (
    ("rows", "counter", "Rows the group gained since /metrics first read it from this store; saved there, so a restart continues the count (never goes down)."),
    ("rows_retracted", "counter", "Rows the group lost (source rows deleted or edited away)."),
    ("errors", "counter", "Error rows the group gained since /metrics first read it from this store; saved there across restarts."),
    ("errors_retracted", "counter", "Error rows the group lost."),
    ("measure", "histogram", "Values each measure gained, each observed once, in the measure's unit."),
    ("mismatches", "counter", "Groups a full refresh found differing from the incremental state."),
    ("current_rows", "gauge", "Rows the group holds now (as `collectbus aggregate show`)."),
    ("current_errors", "gauge", "Error rows the group holds now."),
    ("measure_current_n", "gauge", "Non-NULL values of the measure the group holds now."),
    ("measure_current_sum_value", "gauge", "Sum of the measure over the group's rows now."),
    ("measure_min", "gauge", "Smallest value of the measure in the group."),
    ("measure_max", "gauge", "Largest value of the measure in the group."),
    ("measure_mean", "gauge", "Mean of the measure in the group."),
    ("measure_p50", "gauge", "Median of the measure in the group (within 1 %)."),
    ("measure_p95", "gauge", "95th percentile of the measure in the group (within 1 %)."),
    ("measure_p99", "gauge", "99th percentile of the measure in the group (within 1 %)."),
    ("last_update_timestamp_seconds", "gauge", "When the aggregate was last updated (Unix time)."),
    ("groups", "gauge", "Groups the aggregate holds."),
    ("checkpoint_id", "gauge", "The last source id the aggregate has counted."),
    ("lag_rows", "gauge", "Rows of the store table with an id past the checkpoint."),
    ("unverified", "gauge", "1 while changes the incremental path cannot see may be missing."),
    ("verified_timestamp_seconds", "gauge", "When every counted row was last verified (Unix time)."),
    ("checked_timestamp_seconds", "gauge", "When the block sweep's last full pass began: changes of closed rows before it are counted (Unix time)."),
    ("repaired_timestamp_seconds", "gauge", "When a difference was last found and repaired (Unix time)."),
    ("updates", "counter", "Updates this server ran (serve's background updater)."),
    ("update_errors", "counter", "Updates this server ran that failed."),
    ("update_failing", "gauge", "1 while this server's last update of the aggregate failed."),
)  # fmt: skip


def label_name(key: str) -> str:
    """A group key as a valid Prometheus label name."""
    name = _INVALID.sub("_", key) or "key"
    if name[0].isdigit() or name.startswith("__") or name in _RESERVED:
        name = "key_" + name.lstrip("_")
    return name


def _families() -> dict[str, Metric]:
    return {name: Metric(P + name, doc, kind) for name, kind, doc in _FAMILIES}


class AggregatesSource:
    """Every aggregate in the store: monotonic counters, histograms and gauges."""

    name = "aggregates"

    def __init__(
        self,
        store: Store,
        *,
        specs: Sequence[AggregateSpec] = (),
        updater: AggregateUpdater | None = None,
        tracker: AggregateTracker | None = None,
    ) -> None:
        self.store = store
        self.specs = {s.name: s for s in specs}
        self.updater = updater
        self.tracker = tracker or AggregateTracker()
        self._lock = threading.Lock()
        self._lag_errors: dict[str, str] = {}

    def describe(self) -> Iterable[Metric]:
        return list(_families().values())

    def read(self) -> list[AggregateView]:
        with mapped_errors(self.store.url, "read the aggregates"):
            return read_aggregates(self.store)

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            views = self.read()
            counters = self.tracker.observe(views)
            lags = {v.name: self._lag(v) for v in views}
        f = _families()
        for view in views:
            self._add_view(f, view, counters.get(view.name, AggregateCounters()), lags[view.name])
        if self.updater is not None:
            for name, status in sorted(self.updater.status().items()):
                labels = {"aggregate": name}
                f["updates"].add_sample(P + "updates_total", labels, float(status.runs))
                f["update_errors"].add_sample(P + "update_errors_total", labels, status.errors)
                f["update_failing"].add_sample(
                    P + "update_failing", labels, 1.0 if status.last_error else 0.0
                )
        return list(f.values())

    def _add_view(
        self,
        f: dict[str, Metric],
        view: AggregateView,
        counters: AggregateCounters,
        lag: int | None,
    ) -> None:
        agg = {"aggregate": view.name}
        f["mismatches"].add_sample(P + "mismatches_total", agg, float(counters.mismatches))
        f["last_update_timestamp_seconds"].add_sample(
            P + "last_update_timestamp_seconds", agg, view.updated_ns / NS_PER_S
        )
        f["groups"].add_sample(P + "groups", agg, float(len(view.groups)))
        f["checkpoint_id"].add_sample(P + "checkpoint_id", agg, float(view.last_id))
        f["unverified"].add_sample(P + "unverified", agg, 1.0 if view.unverified else 0.0)
        for family, ns in (
            ("verified_timestamp_seconds", view.verified_ns),
            ("checked_timestamp_seconds", view.checked_ns),
            ("repaired_timestamp_seconds", view.repaired_ns),
        ):
            if ns is not None:
                f[family].add_sample(P + family, agg, ns / NS_PER_S)
        if lag is not None:
            f["lag_rows"].add_sample(P + "lag_rows", agg, float(lag))

        def labels(key: tuple[tuple[str, str], ...], **extra: str) -> dict[str, str]:
            return {**agg, **{label_name(k): v for k, v in key}, **extra}

        # Counters: every group ever seen, including those that emptied since.
        for key, g in sorted(counters.groups.items()):
            base = labels(key)
            f["rows"].add_sample(P + "rows_total", base, float(g.rows))
            f["rows_retracted"].add_sample(P + "rows_retracted_total", base, g.rows_retracted)
            f["errors"].add_sample(P + "errors_total", base, float(g.errors))
            f["errors_retracted"].add_sample(
                P + "errors_retracted_total", base, float(g.errors_retracted)
            )
            for measure, observed in sorted(g.measures.items()):
                m = labels(key, measure=measure)
                for le, count in observed.cumulative(BOUNDS):
                    f["measure"].add_sample(P + "measure_bucket", {**m, "le": le}, count)
                f["measure"].add_sample(P + "measure_count", m, float(observed.count))
                f["measure"].add_sample(P + "measure_sum", m, observed.sum)
        # Gauges: the groups as they are now.
        for group in view.groups:
            key = group_labels(dict(group.keys))
            base = labels(key)
            f["current_rows"].add_sample(P + "current_rows", base, float(group.count))
            f["current_errors"].add_sample(P + "current_errors", base, float(group.errors))
            for measure, mv in sorted(group.measures.items()):
                m = labels(key, measure=measure)
                figures = {
                    "measure_current_n": mv.n,
                    "measure_current_sum_value": mv.sum,
                    "measure_min": mv.min,
                    "measure_max": mv.max,
                    "measure_mean": mv.mean,
                    "measure_p50": mv.quantiles.get(0.5),
                    "measure_p95": mv.quantiles.get(0.95),
                    "measure_p99": mv.quantiles.get(0.99),
                }
                for family, figure in figures.items():
                    if figure is not None:
                        f[family].add_sample(P + family, m, float(figure))

    def _lag(self, view: AggregateView) -> int | None:
        """Rows past the checkpoint, for a configured aggregate over a store table."""
        spec = self.specs.get(view.name)
        if spec is None or spec.external:
            return None
        prepare = self.store.engine.dialect.identifier_preparer
        query = text(
            f"SELECT max({prepare.quote(spec.id_column)}) FROM {prepare.quote(spec.table)}"
        )
        try:
            with (
                mapped_errors(self.store.url, f"read table {spec.table}"),
                self.store.engine.connect() as conn,
            ):
                top = conn.execute(query).scalar()
        except StoreError as err:
            if self._lag_errors.get(view.name) != str(err):
                log.warning("aggregate %s: no lag figure: %s", view.name, err)
            self._lag_errors[view.name] = str(err)
            return None
        self._lag_errors.pop(view.name, None)
        return max(0, int(top or 0) - view.last_id)
