"""What ``/metrics`` exposes: one Prometheus *metric source* per kind of figure.

:mod:`~collectbus.serve.metrics.registry` is the protocol every source follows
(a ``prometheus_client`` collector with a name) and the registry that holds
them. The sources: recorded calls and collections from the store's tables
(:mod:`~collectbus.serve.metrics.callstats`), each host's latest rates
(:mod:`~collectbus.serve.metrics.hostrates`), the in-process bus's health
(:mod:`~collectbus.serve.metrics.bushealth`) and the incremental aggregates
(:mod:`~collectbus.serve.metrics.aggregates`). The counters among them are
kept by :mod:`collectbus.serve.counting`, so they count each row once and
never go down.
"""
