"""``collectbus serve`` as a user runs it: a real subprocess, scraped over HTTP."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from collectbus.clock import NS_PER_S
from collectbus.records import CallRecord, CollectionEvent
from collectbus.store import Store
from collectbus.store import open as open_store
from tests.integration.cli_helpers import collectbus, collectbus_env, start_collectbus
from tests.integration.tcp_proxy import TcpProxy
from tests.unit.serve.serve_helpers import Samples, counters, parse, promtool_check, value

pytestmark = pytest.mark.slow

T0 = 1_700_000_000 * NS_PER_S
HANDLERS = ("get_user", "db.query", "render")
SOURCES = ("host", "pbs")
STATUSES = ("ok", "error", "timeout")


class Served:
    """A running ``collectbus serve``, its address and its standard error."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.stderr: list[str] = []
        self._ready = threading.Event()
        self.base = ""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self._ready.wait(60):
            self.stop()
            raise AssertionError("collectbus serve did not start: " + "".join(self.stderr))

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line)
            if "serving http://" in line and not self._ready.is_set():
                self.base = line.split("serving ")[1].split("/metrics")[0]
                self._ready.set()
        self._ready.set()

    def get(self, path: str) -> tuple[int, str, str]:
        try:
            with urllib.request.urlopen(self.base + path, timeout=60) as response:
                return response.status, response.headers["Content-Type"], response.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.headers["Content-Type"], err.read().decode()

    def scrape(self) -> str:
        status, ctype, body = self.get("/metrics")
        assert status == 200, body + "\n" + "".join(self.stderr)
        assert ctype.startswith("text/plain; version=0.0.4")
        return body

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=60)
        self._reader.join(timeout=10)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()
        return code


def _serve(tmp_path: Path, db_url: str, *args: str, **env_extra: str) -> Served:
    env = collectbus_env(tmp_path, db_url)
    env.update(env_extra)
    return Served(
        start_collectbus("serve", "--listen", "127.0.0.1:0", *args, cwd=tmp_path, env=env)
    )


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    with open_store(store_url) as s:
        yield s


def _write(
    store: Store, start: int, n: int
) -> tuple[Counter[tuple[str, str]], Counter[tuple[str, str]]]:
    """n calls and n collections; what each label set gets."""
    calls = [
        CallRecord(
            handler=HANDLERS[i % 3],
            qualname="app.f",
            host="h",
            pid=1,
            thread_id=1,
            started_ns=T0 + i,
            elapsed_ns=(i % 97 + 1) * 37_000,
            error_type="ValueError" if i % 7 == 0 else None,
        )
        for i in range(start, start + n)
    ]
    events = [
        CollectionEvent(
            source=SOURCES[i % 2],
            host="h",
            started_ns=T0 + i * NS_PER_S,
            duration_ns=(i % 13 + 1) * 1_000_000,
            status=STATUSES[i % 3],
        )
        for i in range(start, start + n)
    ]
    store.write([*calls, *events])
    return (
        Counter((c.handler, "ok" if c.error_type is None else "error") for c in calls),
        Counter((e.source, e.status) for e in events),
    )


def _total(samples: Samples, name: str) -> float:
    return sum(v for (n, _), v in samples.items() if n == name)


def _scrape_until(served: Served, calls: int, collections: int) -> Samples:
    """Scrape until every stored row is counted (PostgreSQL may hold new rows
    back for a scrape or two while writers are in progress); never past them."""
    seen: list[tuple[float, float]] = []
    for _ in range(150):
        samples = parse(served.scrape())
        got = (
            _total(samples, "collectbus_calls_total"),
            _total(samples, "collectbus_collections_total"),
        )
        seen.append(got)
        assert got[0] <= calls, seen
        assert got[1] <= collections, seen
        if got == (calls, collections):
            return samples
        time.sleep(0.2)
    raise AssertionError(f"counters never reached {(calls, collections)}: {seen[-5:]}")


def _no_counter_went_down(before: Samples, after: Samples) -> None:
    for key, old in counters(before).items():
        assert after.get(key, 0.0) >= old, key


def test_counters_count_each_row_once_and_never_go_down(tmp_path: Path, store: Store) -> None:
    _write(store, 0, 120)
    served = _serve(tmp_path, store.engine.url.render_as_string(hide_password=False))
    try:
        base = _scrape_until(served, 120, 120)
        # Scraped again with no new rows: the very same counters.
        text = served.scrape()
        assert counters(parse(text)) == counters(base)
        assert counters(parse(served.scrape())) == counters(base)
        promtool_check(text)

        n = 250
        new_calls, new_collections = _write(store, 120, n)
        grown = _scrape_until(served, 120 + n, 120 + n)
        for (handler, outcome), k in new_calls.items():
            key = {"handler": handler, "outcome": outcome}
            assert (
                value(grown, "collectbus_calls_total", **key)
                == value(base, "collectbus_calls_total", **key) + k
            )
        for handler in HANDLERS:
            k = sum(v for (h, _), v in new_calls.items() if h == handler)
            name = "collectbus_call_duration_seconds_count"
            assert value(grown, name, handler=handler) == value(base, name, handler=handler) + k
        for (source, status), k in new_collections.items():
            key = {"source": source, "status": status}
            assert (
                value(grown, "collectbus_collections_total", **key)
                == value(base, "collectbus_collections_total", **key) + k
            )
        name = "collectbus_collection_duration_seconds_count"
        assert _total(grown, name) == _total(base, name) + n
        assert _total(grown, "collectbus_call_duration_seconds_count") == 120 + n
        _no_counter_went_down(base, grown)

        # Retention deletes the oldest rows: no counter goes down.
        with store.engine.begin() as conn:
            for table in ("calls", "collection_log"):
                conn.execute(
                    sa.text(f"DELETE FROM {table} WHERE id <= (SELECT max(id) - 20 FROM {table})")
                )
        after = parse(served.scrape())
        assert counters(after) == counters(grown)
        promtool_check(served.scrape())
    finally:
        code = served.stop()
    assert code == 0, "".join(served.stderr)


def test_collect_exposes_the_bus_and_the_api_matches_the_cli(
    tmp_path: Path, store_url: str
) -> None:
    served = _serve(tmp_path, store_url, "--collect", "--interval", "0.5s", COLLECTBUS_HOST="node7")
    since = str(time.time() - 60)
    try:
        deadline = time.monotonic() + 60
        while True:
            samples = parse(served.scrape())
            stored = value(samples, "collectbus_collections_total", source="host", status="ok")
            if (
                stored >= 4
                and ("collectbus_host_cpu_busy_ratio", frozenset({("host", "node7")})) in samples
            ):
                break
            assert time.monotonic() < deadline, served.stderr
            time.sleep(0.3)
        assert value(samples, "collectbus_bus_collector_runs_total", collector="host") >= stored
        assert value(samples, "collectbus_bus_subscriber_delivered_total", subscriber="store") >= 1
        assert 0 <= value(samples, "collectbus_host_cpu_busy_ratio", host="node7") <= 1
        promtool_check(served.scrape())

        # PostgreSQL's estimate follows the server's statistics, which a
        # backend reports within about a second of its commits.
        deadline = time.monotonic() + 15
        while True:
            status, ctype, body = served.get("/api/health")
            assert (status, ctype) == (200, "application/json")
            health = json.loads(body)
            if health["store"]["tables"]["collection_log"] >= 1:
                break
            assert time.monotonic() < deadline, health
            time.sleep(0.5)
        assert health["bus"]["state"] == "running"
        assert health["bus"]["collectors"]["host"]["runs"] >= 1
        assert health["store"]["rows_estimated"] is True

        time.sleep(3.5)  # so that the rows counted above are older than the window's end
        # A window that closed a few seconds ago: a tick inside it is committed
        # by now, so the API and the CLI below read the same rows even while
        # the server goes on collecting.
        until = str(time.time() - 3)
        status, ctype, body = served.get(f"/api/hosts/node7/rates?since={since}&until={until}")
        assert (status, ctype) == (200, "application/json")
        env = collectbus_env(tmp_path, store_url)
        cli = collectbus(
            "host",
            "--host",
            "node7",
            "--since",
            since,
            "--until",
            until,
            "--format",
            "json",
            cwd=tmp_path,
            env=env,
        )
        assert cli.returncode == 0, cli.stderr
        assert json.loads(body) == json.loads(cli.stdout)
        assert len(json.loads(body)) >= 2
    finally:
        code = served.stop()
    assert code == 0, "".join(served.stderr)


@pytest.mark.postgres
def test_a_database_that_goes_away_gives_503_and_counting_resumes(
    tmp_path: Path, postgres_url: str
) -> None:
    url = make_url(postgres_url)
    proxy = TcpProxy((url.host or "127.0.0.1", url.port or 5432))
    via_proxy = url.set(port=proxy.port).render_as_string(hide_password=False)
    with open_store(postgres_url) as store:
        _write(store, 0, 40)
        served = _serve(tmp_path, via_proxy, COLLECTBUS_DB_PASSWORD="s3cret")
        try:
            before = _scrape_until(served, 40, 40)

            proxy.cut()
            status, ctype, body = served.get("/metrics")
            assert status == 503
            assert ctype.startswith("text/plain")
            assert body.count("\n") == 1
            assert f"postgres:***@127.0.0.1:{proxy.port}/{url.database}" in body
            assert "s3cret" not in body
            status, _, health = served.get("/api/health")
            assert status == 503
            assert "s3cret" not in health
            assert served.get("/nowhere")[0] == 404  # still serving
            assert served.proc.poll() is None

            _write(store, 40, 25)  # written while the server cannot see the database
            proxy.restore()
            after = _scrape_until(served, 65, 65)
            _no_counter_went_down(before, after)
            assert "metrics unavailable" in "".join(served.stderr)
        finally:
            code = served.stop()
            proxy.close()
    assert code == 0, "".join(served.stderr)


def test_bad_listen_address_missing_database_and_busy_port(tmp_path: Path, sqlite_url: str) -> None:
    env = collectbus_env(tmp_path, sqlite_url)
    bad = collectbus("serve", "--listen", "localhost", cwd=tmp_path, env=env)
    assert bad.returncode == 2
    assert "is not HOST:PORT" in bad.stderr

    missing = collectbus("serve", "--listen", "127.0.0.1:0", cwd=tmp_path, env=env)
    assert missing.returncode == 1
    assert missing.stderr.startswith(f"collectbus: error: {sqlite_url}: no such database file")

    open_store(sqlite_url).close()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        busy = collectbus("serve", "--listen", f"127.0.0.1:{port}", cwd=tmp_path, env=env)
    assert busy.returncode == 1
    assert f"collectbus: error: cannot listen on 127.0.0.1:{port}: " in busy.stderr
    assert "Traceback" not in busy.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _down_deletes_and_shrinks(store: Store) -> None:
    """While the server is down: retention takes the oldest rows, and the
    error collections are relabelled ok (a group shrinks, another grows)."""
    with store.engine.begin() as conn:
        for table in ("calls", "collection_log"):
            conn.execute(
                sa.text(f"DELETE FROM {table} WHERE id <= (SELECT min(id) + 79 FROM {table})")
            )
        conn.execute(sa.text("UPDATE collection_log SET status = 'ok' WHERE status = 'error'"))


def test_a_restarted_server_continues_its_counters(tmp_path: Path, store: Store) -> None:
    url = store.engine.url.render_as_string(hide_password=False)
    listen = f"127.0.0.1:{_free_port()}"
    _write(store, 0, 120)
    served = _serve_on(tmp_path, url, listen)
    try:
        base = _scrape_until(served, 120, 120)
    finally:
        assert served.stop() == 0, "".join(served.stderr)
    _down_deletes_and_shrinks(store)

    served = _serve_on(tmp_path, url, listen)
    try:
        first = parse(served.scrape())
        assert counters(first) == counters(base)  # what was exported, nothing lower
        new_calls, new_collections = _write(store, 120, 60)
        after = _scrape_until(served, 180, 180)
        _no_counter_went_down(base, after)
        for (handler, outcome), k in new_calls.items():
            key = {"handler": handler, "outcome": outcome}
            got = value(after, "collectbus_calls_total", **key)
            assert got == value(base, "collectbus_calls_total", **key) + k
        for (source, status), k in new_collections.items():
            key = {"source": source, "status": status}
            got = value(after, "collectbus_collections_total", **key)
            assert got == value(base, "collectbus_collections_total", **key) + k
    finally:
        code = served.stop()
    assert code == 0, "".join(served.stderr)


def _serve_on(tmp_path: Path, db_url: str, listen: str) -> Served:
    env = collectbus_env(tmp_path, db_url)
    return Served(start_collectbus("serve", "--listen", listen, cwd=tmp_path, env=env))


class Prometheus:
    """A real Prometheus server scraping one target every second."""

    def __init__(self, tmp_path: Path, target: str) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            reason = "prometheus is not installed (Debian: apt-get install prometheus)"
            if os.environ.get("CI") == "true":
                pytest.fail(f"prometheus is required when CI=true: {reason}")
            pytest.skip(reason)
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
            "scrape_configs:\n  - job_name: collectbus\n"
            f"    static_configs:\n      - targets: ['{target}']\n"
        )
        self.base = f"http://127.0.0.1:{_free_port()}"
        self.log = (tmp_path / "prometheus.log").open("w")
        self.proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address={self.base.removeprefix('http://')}",
                "--log.level=warn",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(self.base + "/-/ready", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert self.proc.poll() is None, (tmp_path / "prometheus.log").read_text()
            assert time.monotonic() < deadline, "prometheus did not become ready"
            time.sleep(0.2)

    def query(self, query: str, at: float | None = None) -> list[dict[str, Any]]:
        params = {"query": query, **({"time": repr(at)} if at is not None else {})}
        url = self.base + "/api/v1/query?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=30) as r:
            doc = json.load(r)
        assert doc["status"] == "success", doc
        return list(doc["data"]["result"])

    def wait_for_sum(self, metric: str, total: float) -> None:
        """Until Prometheus has scraped ``sum(metric) == total`` (never above it)."""
        deadline = time.monotonic() + 90
        while True:
            result = self.query(f"sum({metric})")
            got = float(result[0]["value"][1]) if result else 0.0
            assert got <= total, (got, total)
            if got == total:
                return
            assert time.monotonic() < deadline, f"{metric}: {got}, waiting for {total}"
            time.sleep(0.5)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        finally:
            self.log.close()


def test_prometheus_sees_no_reset_across_a_restart_with_rows_deleted(
    tmp_path: Path, store: Store
) -> None:
    """Prometheus scrapes serve every second; serve is stopped, most rows are
    deleted, serve starts again and more calls come: Prometheus records no
    counter reset, and increase() is the calls made, within its extrapolation."""
    url = store.engine.url.render_as_string(hide_password=False)
    listen = f"127.0.0.1:{_free_port()}"
    prometheus = Prometheus(tmp_path, listen)
    try:
        _write(store, 0, 100)
        served = _serve_on(tmp_path, url, listen)
        try:
            prometheus.wait_for_sum("collectbus_calls_total", 100)
            start = time.time()
            _write(store, 100, 200)
            prometheus.wait_for_sum("collectbus_calls_total", 300)
        finally:
            assert served.stop() == 0, "".join(served.stderr)
        with store.engine.begin() as conn:  # retention, while serve is down
            conn.execute(sa.text("DELETE FROM calls WHERE id <= (SELECT min(id) + 249 FROM calls)"))
        time.sleep(3)  # scrapes fail meanwhile: the series go stale
        served = _serve_on(tmp_path, url, listen)
        try:
            _write(store, 300, 150)
            prometheus.wait_for_sum("collectbus_calls_total", 450)
            time.sleep(2)  # a few more samples at 450
        finally:
            assert served.stop() == 0, "".join(served.stderr)
        end = time.time()
        window = f"{int(end - start) + 30}s"  # every sample since the one at 100

        resets = prometheus.query(f"resets(collectbus_calls_total[{window}])", at=end)
        assert len(resets) == 6  # handlers × outcomes
        assert all(float(r["value"][1]) == 0 for r in resets), resets

        # The raw samples: never down, and up by exactly the calls made.
        raw = prometheus.query(f"collectbus_calls_total[{window}]", at=end)
        low = high = 0.0
        for series in raw:
            values = [float(v) for _, v in series["values"]]
            times = [float(t) for t, _ in series["values"]]
            assert values == sorted(values), series["metric"]
            delta = values[-1] - values[0]
            span = times[-1] - times[0]
            step = span / (len(times) - 1)
            # increase() extrapolates towards each end of the window by at
            # most 1.1 average intervals.
            low += delta
            high += delta * (span + 2 * 1.1 * step) / span
        assert low == 450 - 100
        (increase,) = prometheus.query(f"sum(increase(collectbus_calls_total[{window}]))", at=end)
        assert low <= float(increase["value"][1]) <= high, (increase, low, high)
    finally:
        prometheus.stop()
