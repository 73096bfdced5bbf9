"""The HTTP side of ``collectbus serve``: the server, the JSON API and the dashboard.

:mod:`~collectbus.serve.http.app` holds the routes (:class:`ServeApp`) and
puts them on a threaded HTTP server (:func:`make_server`);
:mod:`~collectbus.serve.http.api` and :mod:`~collectbus.serve.http.aggdoc`
build the JSON documents of ``/api/health``, ``/api/hosts/<host>/rates`` and
``/api/aggregates``; :mod:`~collectbus.serve.http.dashboard` draws the HTML
page at ``/`` from the same documents, and
:mod:`~collectbus.serve.http.callspage` the calls page at ``/calls`` and its
``/api/calls``, in the stylesheet and number formats
of :mod:`~collectbus.serve.http.dashstyle`. ``/metrics`` is the metric
sources of :mod:`collectbus.serve.metrics`, in one registry.
"""
