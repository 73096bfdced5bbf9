"""``collectbus serve``: Prometheus ``/metrics``, a JSON API and a dashboard over HTTP.

:class:`ServeApp` answers requests; :func:`make_server` puts it on HTTP. The
metrics come from *metric sources* (:class:`MetricSource`), each registered
in the server's own ``prometheus_client`` registry.

Three rooms:

- :mod:`collectbus.serve.http`: the server and its routes, the JSON
  documents of the API, the dashboard;
- :mod:`collectbus.serve.metrics`: the metric sources behind ``/metrics``;
- :mod:`collectbus.serve.counting`: counters that count each stored row once
  and never go down, kept in the store across restarts.

:mod:`collectbus.serve.aggupdate` runs the aggregates' incremental updates in
the server's background.
"""

from __future__ import annotations

from collectbus.serve.http.app import ServeApp, default_sources, make_server
from collectbus.serve.metrics.registry import MetricSource, metrics_registry

__all__ = ["MetricSource", "ServeApp", "default_sources", "make_server", "metrics_registry"]
