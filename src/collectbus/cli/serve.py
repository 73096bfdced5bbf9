"""``collectbus serve``: Prometheus ``/metrics`` and the JSON API over HTTP."""

from __future__ import annotations

import logging
import signal
import threading
from http.server import ThreadingHTTPServer
from typing import TYPE_CHECKING

import click

from collectbus.cli.context import CliContext, pass_cli
from collectbus.cli.output import duration_option
from collectbus.errors import CollectBusError, ConfigError

if TYPE_CHECKING:
    from collectbus.pipeline import Pipeline

log = logging.getLogger("collectbus.serve")

DEFAULT_LISTEN = "127.0.0.1:9469"
#: A server that scrapes a database must not hang on a server that does not answer.
PG_CONNECT_TIMEOUT_S = 5


def _listen(_ctx: click.Context, _param: click.Parameter, value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise click.BadParameter(f"{value!r} is not HOST:PORT (e.g. {DEFAULT_LISTEN})")
    return host, int(port)


def _with_connect_timeout(url: str) -> str | None:
    """The URL with a connect timeout, if it is PostgreSQL's and has none."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql" or "connect_timeout" in parsed.query:
        return None
    timeout = str(PG_CONNECT_TIMEOUT_S)
    return parsed.update_query_dict({"connect_timeout": timeout}).render_as_string(
        hide_password=False
    )


@click.command()
@click.option(
    "--listen",
    default=DEFAULT_LISTEN,
    show_default=True,
    callback=_listen,
    metavar="HOST:PORT",
    help="Address to serve on; port 0 picks a free port.",
)
@click.option(
    "--collect/--no-collect",
    default=False,
    show_default=True,
    help="Also run the bus with the host collector, writing to the store.",
)
@click.option(
    "--interval",
    callback=duration_option,
    metavar="TIME",
    help="With --collect: host sample interval (default: its tier's).",
)
@click.option(
    "--rates-window",
    default="5m",
    show_default=True,
    callback=duration_option,
    metavar="TIME",
    help="Host rate gauges use the samples of this last window.",
)
@click.option(
    "--aggregate/--no-aggregate",
    "run_aggregates",
    default=None,
    help="Also update the configured [[aggregates]] in the background "
    "(default: on when any is configured).",
)
@click.option(
    "--aggregate-interval",
    default="10s",
    show_default=True,
    callback=duration_option,
    metavar="TIME",
    help="With --aggregate: time between two updates.",
)
@click.option(
    "--instance",
    metavar="NAME",
    help="Name the counters are kept under in the store, so that a server restarted "
    "under it continues them (default: the configured host name and the --listen port, "
    "HOST:PORT). Each server over one store needs its own.",
)
@pass_cli
def serve(
    cli: CliContext,
    listen: tuple[str, int],
    collect: bool,
    interval: float | None,
    rates_window: float,
    run_aggregates: bool | None,
    aggregate_interval: float,
    instance: str | None,
) -> None:
    """Serve Prometheus /metrics, a JSON API (/api/health, /api/hosts,
    /api/hosts/HOST/rates, /api/aggregates), a dashboard at / and the fleet at /fleet.

    Counters count each stored call and collection once, so they only grow,
    whatever retention deletes; they are kept in the store, and a restart
    continues them. Stop with Ctrl-C or SIGTERM.
    """
    from collectbus.aggregate.spec import specs_from_config
    from collectbus.clock import SystemClock
    from collectbus.pipeline import Pipeline
    from collectbus.serve import ServeApp, default_sources, make_server
    from collectbus.serve.aggupdate import AggregateUpdater
    from collectbus.serve.http.app import saved_tracker
    from collectbus.serve.metrics.aggregates import AggregatesSource
    from collectbus.store import Store

    timed = _with_connect_timeout(cli.config().store.url)
    config = cli.config(**{"store.url": timed}) if timed else cli.config()
    specs = specs_from_config(config)
    if run_aggregates and not specs:
        raise ConfigError(
            f"{config.source}: --aggregate: no [[aggregates]] configured",
            hint="add an [[aggregates]] table, or drop --aggregate",
        )
    if run_aggregates is None:
        run_aggregates = bool(specs)
    pipeline: Pipeline | None = None
    store: Store
    if collect:
        pipeline = Pipeline(config, interval_s=interval)
        store, _sink = pipeline.local()
    else:
        store = cli.read_store()
    updater: AggregateUpdater | None = None
    host, port = listen
    name = instance or f"{config.host}:{port}"
    try:
        clock = pipeline.clock if pipeline is not None else SystemClock()
        if run_aggregates:
            updater = AggregateUpdater(store, specs, interval_s=aggregate_interval)
        aggregates = AggregatesSource(
            store, specs=specs, updater=updater, tracker=saved_tracker(store, name, clock=clock)
        )
        sources = default_sources(
            store,
            clock=clock,
            pipeline=pipeline,
            rates_window_s=rates_window,
            aggregates=aggregates,
            instance=name,
        )
        collector = config.collectors.host
        app = ServeApp(
            store,
            sources=sources,
            pipeline=pipeline,
            clock=clock,
            updater=updater,
            host_interval_s=collector.interval or config.bus.tiers[collector.tier],
        )
        try:
            server = make_server(app, host, port)
        except OSError as err:
            raise CollectBusError(
                f"cannot listen on {host}:{port}: {err.strerror or err}",
                hint="choose another address with --listen",
            ) from err
        try:
            if updater is not None:
                updater.start()
            _serve_until_signal(server, pipeline, store.url)
        finally:
            server.server_close()
    finally:
        if updater is not None:
            updater.stop()
        if pipeline is not None:
            pipeline.stop()
        else:
            store.close()


def _serve_until_signal(server: ThreadingHTTPServer, pipeline: Pipeline | None, db: str) -> None:
    """Serve (and collect) until SIGTERM or SIGINT."""

    def _on_signal(signum: int, _frame: object) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        # shutdown() waits for serve_forever() to return: not from its own thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    host, port = server.server_address[:2]
    if pipeline is not None:
        pipeline.start()
    click.echo(
        f"collectbus: serving http://{host!s}:{port}/metrics, /api/ and / from {db}"
        + (", collecting" if pipeline is not None else ""),
        err=True,
    )
    server.serve_forever()
