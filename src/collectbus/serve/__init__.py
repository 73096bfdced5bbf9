"""``collectbus serve``: Prometheus ``/metrics`` and a JSON API.

:class:`ServeApp` answers requests; :func:`make_server` puts it on HTTP. The
metrics come from *metric sources* (:class:`MetricSource`), each registered
in the server's own ``prometheus_client`` registry.
"""

from __future__ import annotations

from collectbus.serve.app import ServeApp, default_sources, make_server
from collectbus.serve.source import MetricSource, metrics_registry

__all__ = ["MetricSource", "ServeApp", "default_sources", "make_server", "metrics_registry"]
