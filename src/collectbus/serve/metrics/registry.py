"""The seam between what collectbus knows and Prometheus: metric sources.

A *metric source* is anything with a ``name`` that yields Prometheus metric
families from ``collect()`` and names them, without reading anything, in
``describe()``. It is a :class:`prometheus_client.registry.Collector`, so the
server registers each source in one fresh :class:`CollectorRegistry` (never
the library's global one): the registry refuses two sources that expose the
same metric name, and ``/metrics`` is ``generate_latest`` over it.

Adding a source (aggregates from the aggregation engine, say) is writing one
class with these three members and passing it to :func:`metrics_registry`.

A source that cannot read what it reports (the database is away) raises
:class:`~collectbus.errors.StoreError`; it must leave its own state as it was,
so that the next scrape after recovery carries on where the last good one
stopped and no counter goes down.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, runtime_checkable

from prometheus_client.metrics_core import Metric
from prometheus_client.registry import CollectorRegistry


@runtime_checkable
class MetricSource(Protocol):
    """Yields metric families for ``/metrics``."""

    @property
    def name(self) -> str:
        """A short name for logs and errors (``calls``, ``collections``, ...)."""
        ...

    def describe(self) -> Iterable[Metric]:
        """The families ``collect`` yields, without samples; reads nothing."""
        ...

    def collect(self) -> Iterable[Metric]:
        """The families with their current samples."""
        ...


def metrics_registry(sources: Iterable[MetricSource]) -> CollectorRegistry:
    """A fresh registry holding ``sources``; a metric name exposed twice is an error."""
    registry = CollectorRegistry(auto_describe=False)
    for source in sources:
        registry.register(source)
    return registry
