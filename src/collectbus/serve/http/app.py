"""``collectbus serve``: Prometheus ``/metrics`` and a JSON API over HTTP.

Routes (GET only):

- ``/metrics``: every metric source (:mod:`collectbus.serve.metrics.registry`) through
  one fresh ``prometheus_client`` registry, in the text format or OpenMetrics,
  as the ``Accept`` header asks;
- ``/api/health``: the store's status, with rows per table estimated (never
  counted: monitoring polls it) and, when the server collects, the bus's
  health and the store writer's counters;
- ``/api/hosts/<host>/rates?since=5m&until=now``: the rows that
  ``collectbus host --format json`` prints;
- ``/api/aggregates``: every aggregate in the store (:mod:`collectbus.serve.http.aggdoc`);
- ``/api/calls?since=1h&until=now&slowest=10&errors=10``: recorded calls per
  handler, the slowest and the latest errors (:mod:`collectbus.serve.http.callspage`);
- ``/api/hosts?interval=10s&silent_after=5m``: every host, its state and latest
  figures, as ``collectbus hosts --format json`` (:mod:`collectbus.serve.http.fleetpage`);
- ``/``: the dashboard (:mod:`collectbus.serve.http.dashboard`), an HTML page;
  ``/?host=NAME``: the same for one host;
- ``/calls``: the calls page, the same document as HTML;
- ``/fleet``: the fleet page, every host as a tile, the ``/api/hosts`` document as HTML.

A database that cannot be read at request time gives a ``503`` whose body is
one line naming the database (password masked); the server keeps running, and
the sources keep their counts, so the next scrape after recovery carries on
with no counter going down. Unknown paths get a ``404``; every API error is
JSON, ``{"error": "..."}``. A client that hangs up before its response is
sent (a scrape that Prometheus timed out) is one debug line in the log.

The server is the standard library's :class:`ThreadingHTTPServer`; it binds to
127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote, urlsplit

from prometheus_client.exposition import choose_encoder

from collectbus.aggregate import AggregateView, read_aggregates
from collectbus.clock import Clock, SystemClock
from collectbus.configfile import DEFAULT_HOST_TIER, DEFAULT_TIERS
from collectbus.errors import StoreError
from collectbus.pendingids import DEFAULT_PENDING_S
from collectbus.pipeline import Pipeline
from collectbus.serve.aggupdate import AggregateUpdater
from collectbus.serve.counting.aggtrack import AggregateTracker
from collectbus.serve.counting.saved import SavedSeries
from collectbus.serve.http.aggdoc import aggregates_document
from collectbus.serve.http.api import ApiError, health, host_rates, scrub
from collectbus.serve.http.callspage import calls_document, render_calls_page
from collectbus.serve.metrics.aggregates import AggregatesSource
from collectbus.serve.metrics.bushealth import BusHealthSource
from collectbus.serve.metrics.callstats import CallStatsSource, CollectionsSource
from collectbus.serve.metrics.hostrates import DEFAULT_WINDOW_S, HostRatesSource
from collectbus.serve.metrics.registry import MetricSource, metrics_registry
from collectbus.store import Store
from collectbus.store.dberrors import mapped_errors

log = logging.getLogger("collectbus.serve")

JSON = "application/json"
TEXT = "text/plain; charset=utf-8"
HTML = "text/html; charset=utf-8"


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    content_type: str
    body: bytes


def _json(status: int, document: object) -> Response:
    return Response(status, JSON, (json.dumps(document, default=str) + "\n").encode())


def _error(status: int, message: str) -> Response:
    return _json(status, {"error": message})


def default_sources(
    store: Store,
    *,
    clock: Clock,
    pipeline: Pipeline | None = None,
    rates_window_s: float = DEFAULT_WINDOW_S,
    pending_s: float = DEFAULT_PENDING_S,
    aggregates: AggregatesSource | None = None,
    instance: str | None = None,
) -> list[MetricSource]:
    """Calls, collections, host rates and aggregates from the store; the bus's
    health if it runs here.

    ``instance``: the name under which the counters are kept in the store
    (:mod:`collectbus.serve.counting.saved`), so that a server restarted under the
    same name continues them; None keeps them in memory only. Pass
    ``aggregates`` a tracker from :func:`saved_tracker` for the same.
    """

    def saved(source: str) -> SavedSeries | None:
        return None if instance is None else SavedSeries(store, instance, source, clock=clock)

    sources: list[MetricSource] = [
        CallStatsSource(store, clock=clock, pending_s=pending_s, saved=saved(CallStatsSource.name)),
        CollectionsSource(
            store, clock=clock, pending_s=pending_s, saved=saved(CollectionsSource.name)
        ),
        HostRatesSource(store, clock=clock, window_s=rates_window_s),
        aggregates or AggregatesSource(store, tracker=saved_tracker(store, instance, clock=clock)),
    ]
    if pipeline is not None:
        sources.append(BusHealthSource(pipeline.bus.health))
    return sources


def saved_tracker(store: Store, instance: str | None, *, clock: Clock) -> AggregateTracker:
    """The aggregates' tracker, its counters kept under ``instance`` (None: in memory)."""
    if instance is None:
        return AggregateTracker()
    return AggregateTracker(SavedSeries(store, instance, AggregatesSource.name, clock=clock))


#: A client that closed its connection before the response was written.
HUNG_UP = (BrokenPipeError, ConnectionResetError)


class ServeApp:
    """What the server answers, independent of HTTP plumbing."""

    def __init__(
        self,
        store: Store,
        *,
        sources: Sequence[MetricSource] | None = None,
        pipeline: Pipeline | None = None,
        clock: Clock | None = None,
        updater: AggregateUpdater | None = None,
        host_interval_s: float = DEFAULT_TIERS[DEFAULT_HOST_TIER],
    ) -> None:
        self.store = store
        #: The host collector's interval, which the fleet's states are measured in.
        self.host_interval_s = host_interval_s
        self.pipeline = pipeline
        self.updater = updater
        self.clock = clock or SystemClock()
        self.sources = (
            list(sources)
            if sources is not None
            else default_sources(store, clock=self.clock, pipeline=pipeline)
        )
        self.registry = metrics_registry(self.sources)
        # One scrape at a time: two at once would only queue on the sources' locks.
        self._scrape = threading.Lock()

    def metrics(self, accept: str) -> Response:
        encoder, content_type = choose_encoder(accept)
        with self._scrape:
            try:
                body = encoder(self.registry)
            except StoreError as err:
                message = f"collectbus: metrics unavailable: {scrub(self.store, err)}"
                log.warning("%s", message)
                return Response(503, TEXT, (message + "\n").encode())
        return Response(200, content_type, body)

    def handle(self, method: str, target: str, accept: str = "") -> Response:
        """Answer one request: ``method`` and the request target (path and query)."""
        parts = urlsplit(target)
        path = parts.path.rstrip("/") or "/"
        segments = [unquote(s) for s in path.strip("/").split("/")]
        known = path in (
            "/",
            "/calls",
            "/fleet",
            "/api/hosts",
            "/metrics",
            "/api/health",
            "/api/aggregates",
            "/api/calls",
        ) or (len(segments) == 4 and segments[:2] == ["api", "hosts"] and segments[3] == "rates")
        if not known:
            return _error(404, f"no such path: {parts.path}; try /metrics or /api/health")
        if method not in ("GET", "HEAD"):
            return _error(405, f"{method} is not allowed on {parts.path}; use GET")
        if path == "/metrics":
            return self.metrics(accept)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        try:
            if path == "/":
                return self.dashboard(query)
            if path in ("/fleet", "/api/hosts"):
                return self.fleet(path, query)
            if path == "/calls":
                with mapped_errors(self.store.url, "draw the calls page"):
                    page = render_calls_page(self.store, query, clock=self.clock)
                return Response(200, HTML, page.encode("utf-8", "backslashreplace"))
            if path == "/api/calls":
                with mapped_errors(self.store.url, "read the calls"):
                    return _json(200, calls_document(self.store, query))
            if path == "/api/aggregates":
                return _json(200, aggregates_document(self._aggregates()))
            if path == "/api/health":
                status, doc = health(self.store, self.pipeline)
                return _json(status, doc)
            return _json(200, host_rates(self.store, segments[2], query))
        except ApiError as err:
            return _error(err.status, str(err))
        except StoreError as err:
            log.warning("%s: %s", parts.path, err)
            return _error(503, scrub(self.store, err))

    def _aggregates(self) -> list[AggregateView]:
        with mapped_errors(self.store.url, "read the aggregates"):
            return read_aggregates(self.store)

    def dashboard(self, query: dict[str, str] | None = None) -> Response:
        from collectbus.serve.http.dashboard import render_dashboard

        host = (query or {}).get("host") or None
        with mapped_errors(self.store.url, "draw the dashboard"):
            page = render_dashboard(
                self.store,
                clock=self.clock,
                pipeline=self.pipeline,
                updater=self.updater,
                host=host,
            )
        return Response(200, HTML, page.encode("utf-8", "backslashreplace"))

    def fleet(self, path: str, query: dict[str, str]) -> Response:
        from collectbus.serve.http.fleetpage import hosts_document, render_fleet_page

        interval = self.host_interval_s
        with mapped_errors(self.store.url, "read the hosts"):
            if path == "/api/hosts":
                now = self.clock.time_ns()
                return _json(
                    200, hosts_document(self.store, query, interval_s=interval, now_ns=now)
                )
            page = render_fleet_page(self.store, query, interval_s=interval, clock=self.clock)
        return Response(200, HTML, page.encode("utf-8", "backslashreplace"))


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def _answer(self) -> None:
        try:
            response = self.server.app.handle(
                self.command, self.path, self.headers.get("Accept", "")
            )
        except Exception:
            # A bug, not bad input: the client gets a 500, the log the traceback.
            log.exception("%s %s failed", self.command, self.path)
            response = _error(500, "internal error; see the server's log")
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)
        except HUNG_UP as err:
            _hung_up(self.client_address, self.command, self.path, err)
            self.close_connection = True

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = _answer

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s %s", self.address_string(), format % args)


def _hung_up(client: object, method: str, path: str, err: OSError) -> None:
    host = client[0] if isinstance(client, tuple) else client
    log.debug("%s: %s %s: the client hung up (%s)", host, method, path, type(err).__name__)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], app: ServeApp) -> None:
        self.app = app
        super().__init__(address, _Handler)

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that hung up while its request was read: one debug line."""
        err = sys.exc_info()[1]
        if isinstance(err, HUNG_UP):
            _hung_up(client_address, "-", "-", err)
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]


def make_server(app: ServeApp, host: str = "127.0.0.1", port: int = 9469) -> ThreadingHTTPServer:
    """An HTTP server for ``app``, bound (port 0: any free port) but not serving yet."""
    return _Server((host, port), app)
