"""Routes, content types and errors of the HTTP server, in process."""

from __future__ import annotations

import json
import logging
import socket
import struct
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from collectbus.clock import NS_PER_S, FakeClock
from collectbus.serve import ServeApp, make_server
from collectbus.store import Store
from collectbus.store import open as open_store
from collectbus.store.store import make_engine
from collectbus.testing.hosts import make_host_sample

T0 = 1_700_000_000 * NS_PER_S
#: How often serve_forever looks for shutdown(): each server's teardown waits for it.
POLL_S = 0.02


@pytest.fixture
def store(migrated_sqlite_url: str) -> Iterator[Store]:
    with open_store(migrated_sqlite_url) as s:
        yield s


@pytest.fixture
def base_url(store: Store) -> Iterator[str]:
    server = make_server(ServeApp(store), "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, args=(POLL_S,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _get(url: str, method: str = "GET") -> tuple[int, str, bytes]:
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers["Content-Type"], err.read()


def test_metrics_and_api_content_types(base_url: str) -> None:
    status, ctype, body = _get(f"{base_url}/metrics")
    assert status == 200
    assert ctype.startswith("text/plain; version=0.0.4")
    assert b"# TYPE collectbus_calls_total counter" in body
    status, ctype, body = _get(f"{base_url}/api/health")
    assert (status, ctype) == (200, "application/json")
    doc = json.loads(body)
    assert doc["status"] == "ok"
    assert doc["store"]["up_to_date"] is True
    assert doc["bus"] is None


def test_openmetrics_when_asked(store: Store) -> None:
    response = ServeApp(store).handle("GET", "/metrics", "application/openmetrics-text")
    assert response.content_type.startswith("application/openmetrics-text")
    assert response.body.rstrip().endswith(b"# EOF")


@pytest.mark.parametrize(
    "path", ["/index.html", "/metric", "/api", "/api/hosts/x", "/api/hosts/x/rate"]
)
def test_unknown_paths_are_404_with_a_json_message(base_url: str, path: str) -> None:
    status, ctype, body = _get(base_url + path)
    assert (status, ctype) == (404, "application/json")
    assert "no such path" in json.loads(body)["error"]


def test_other_methods_are_405(base_url: str) -> None:
    status, ctype, body = _get(f"{base_url}/metrics", method="POST")
    assert (status, ctype) == (405, "application/json")
    assert "use GET" in json.loads(body)["error"]


def test_host_rates_errors_are_json(store: Store) -> None:
    store.write([make_host_sample("node1", T0), make_host_sample("node1", T0 + NS_PER_S)])
    app = ServeApp(store, clock=FakeClock())
    unknown = app.handle("GET", "/api/hosts/nowhere/rates")
    assert unknown.status == 404
    assert "no host named 'nowhere'" in json.loads(unknown.body)["error"]
    bad = app.handle("GET", "/api/hosts/node1/rates?since=yesterdayish")
    assert bad.status == 400
    assert "'yesterdayish' is not a time" in json.loads(bad.body)["error"]
    extra = app.handle("GET", "/api/hosts/node1/rates?sinse=5m")
    assert extra.status == 400
    assert "sinse" in json.loads(extra.body)["error"]
    since = T0 // NS_PER_S
    rows = json.loads(app.handle("GET", f"/api/hosts/node1/rates?since={since}").body)
    assert [r["time_ns"] for r in rows] == [T0, T0 + NS_PER_S]
    assert rows[1]["cpu_percent"] == pytest.approx(40)
    assert rows[0]["cpu_percent"] is None


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_database_gives_503_naming_it_password_masked() -> None:
    url = f"postgresql://collector:s3cret@127.0.0.1:{_closed_port()}/metrics?connect_timeout=3"
    store = Store(make_engine(url))
    try:
        app = ServeApp(store)
        response = app.handle("GET", "/metrics")
        assert response.status == 503
        assert response.content_type.startswith("text/plain")
        text = response.body.decode()
        assert text.count("\n") == 1
        assert "collector:***@127.0.0.1" in text
        assert "/metrics" in text
        assert "cannot connect" in text
        assert "s3cret" not in text
        health = app.handle("GET", "/api/health")
        assert health.status == 503
        assert "s3cret" not in health.body.decode()
        assert "cannot connect" in json.loads(health.body)["store"]["error"]
    finally:
        store.close()


def test_the_dashboard_and_the_aggregates_api_of_an_empty_store(base_url: str) -> None:
    status, ctype, body = _get(base_url + "/")
    assert (status, ctype) == (200, "text/html; charset=utf-8")
    page = body.decode()
    assert "no host samples in the last hour" in page
    assert "no aggregates in the store" in page
    assert "no collections in the last hour" in page
    status, ctype, body = _get(base_url + "/api/aggregates")
    assert (status, ctype) == (200, "application/json")
    assert json.loads(body) == []


def test_dashboard_and_aggregates_api_give_503_naming_the_database(tmp_path: Path) -> None:
    path = tmp_path / "gone.db"
    with open_store(f"sqlite:///{path}") as store:
        with store.engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE checkpoints")
            conn.exec_driver_sql("DROP TABLE hosts")
        app = ServeApp(store)
        for target in ("/", "/api/aggregates"):
            response = app.handle("GET", target)
            assert response.status == 503, target
            message = json.loads(response.body)["error"]
            assert str(path) in message
            assert "\n" not in message
        assert app.handle("GET", "/metrics").status == 503


class _Slow:
    """A metric source that waits, inside the scrape, until told to go on."""

    name = "slow"

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.go_on = threading.Event()

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> list[Metric]:
        self.entered.set()
        assert self.go_on.wait(30)
        family = GaugeMetricFamily(
            "slow_padding", "Enough samples to fill the socket.", labels=["i"]
        )
        for i in range(20_000):
            family.add_metric([str(i)], float(i))
        return [family]


def test_a_client_that_hangs_up_mid_scrape_is_one_debug_line(
    store: Store, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    """Prometheus times a scrape out: it closes the connection before the
    response is written (with a reset, as a killed client does)."""
    slow = _Slow()
    server = make_server(ServeApp(store, sources=[slow]), "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, args=(POLL_S,), daemon=True)
    thread.start()
    port = server.server_address[1]
    try:
        with caplog.at_level(logging.DEBUG, logger="collectbus.serve"):
            client = socket.create_connection(("127.0.0.1", port), timeout=30)
            client.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            assert slow.entered.wait(30)
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.close()  # a reset, before reading a byte
            slow.go_on.set()
            # The server answers the next client.
            status, _, body = _get(f"http://127.0.0.1:{port}/metrics")
            assert status == 200
            assert b"slow_padding" in body
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    hung_up = [r for r in caplog.records if "hung up" in r.getMessage()]
    assert len(hung_up) == 1
    assert hung_up[0].levelno == logging.DEBUG
    assert hung_up[0].getMessage().startswith("127.0.0.1: GET /metrics: the client hung up (")
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    err = capfd.readouterr().err
    assert "Traceback" not in err
    assert "BrokenPipeError" not in err
    assert "ConnectionResetError" not in err
