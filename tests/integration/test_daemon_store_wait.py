"""``collectbus daemon`` started while its PostgreSQL cannot be reached.

The daemon is a real background process; the database is a fresh PostgreSQL
database behind a TCP forwarder (:class:`TcpProxy`) that refuses connections
until the test restores it. The daemon keeps collecting meanwhile, logs the
outage in one line, and writes what it kept once the database is reachable.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from collectbus.store import open as open_store
from tests.integration.cli_helpers import assert_stopped, collectbus, collectbus_env
from tests.integration.tcp_proxy import TcpProxy

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

DEADLINE_S = 60
# One host sample a second, and nothing else, so that a few seconds are a few collections.
CONFIG = '[collectors.host]\ninterval = "1s"\n[collectors.host_inventory]\nenabled = false\n'


def _wait_for(what: str, ready: Callable[[], bool]) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not ready():
        assert time.monotonic() < deadline, f"no {what} within {DEADLINE_S} s"
        time.sleep(0.2)


def _log(tmp_path: Path) -> str:
    path = tmp_path / "collectbus.log"
    return path.read_text() if path.exists() else ""


def _lines(tmp_path: Path, text: str) -> list[str]:
    return [line for line in _log(tmp_path).splitlines() if text in line]


@pytest.fixture
def proxy(postgres_url: str) -> Iterator[TcpProxy]:
    """A forwarder to the test's database that refuses connections until restored."""
    url = make_url(postgres_url)
    forwarder = TcpProxy((url.host or "127.0.0.1", url.port or 5432))
    forwarder.cut()
    yield forwarder
    forwarder.close()


def _via(postgres_url: str, port: int) -> str:
    return make_url(postgres_url).set(port=port).render_as_string(hide_password=False)


def _start(tmp_path: Path, url: str) -> dict[str, str]:
    (tmp_path / "collectbus.toml").write_text(CONFIG)
    env = collectbus_env(tmp_path, url)
    started = collectbus("daemon", "start", cwd=tmp_path, env=env)
    assert started.returncode == 0, started.stderr
    assert started.stderr.startswith("collectbus: warning: ")
    assert "cannot connect" in started.stderr
    assert "starting anyway" in started.stderr
    return env


def test_collections_made_while_the_database_is_away_are_written_when_it_comes(
    tmp_path: Path, postgres_url: str, proxy: TcpProxy
) -> None:
    env = _start(tmp_path, _via(postgres_url, proxy.port))
    try:
        _wait_for("outage line", lambda: bool(_lines(tmp_path, "ERROR: store: ")))
        time.sleep(3)  # three more collections, kept by the daemon
        back_ns = time.time_ns()
        proxy.restore()
        _wait_for("recovery line", lambda: bool(_lines(tmp_path, " is back after ")))
        status = collectbus("daemon", "status", cwd=tmp_path, env=env)
        assert status.returncode == 0, status.stderr
    finally:
        stopped = collectbus("daemon", "stop", cwd=tmp_path, env=env)
    assert_stopped(stopped, tmp_path, env)

    with open_store(postgres_url, migrate=False) as store:
        store.check_schema()  # migrated by the daemon once it could connect
        log = store.collection_log(limit=1000)
        with store.engine.connect() as conn:
            samples = conn.execute(sa.text("SELECT count(*) FROM host_mem")).scalar_one()
    kept = [row for row in log if int(str(row["started_ns"])) < back_ns]
    assert len(kept) >= 3, log
    assert {row["source"] for row in log} == {"host"}
    assert samples == len(log)

    text = _log(tmp_path)
    assert "Traceback" not in text
    problems = [line for line in text.splitlines() if ": ERROR: " in line or ": WARNING: " in line]
    assert len(problems) == 1, text
    masked = make_url(_via(postgres_url, proxy.port)).set(drivername="postgresql+psycopg")
    assert (
        f"ERROR: store: {masked.render_as_string(hide_password=True)}: cannot connect"
        in (problems[0])
    )
    assert len(_lines(tmp_path, " is back after ")) == 1
    assert len(_lines(tmp_path, "collectbus daemon stopped: ")) == 1
    assert "received SIGTERM" in text


def test_a_daemon_that_never_reached_its_database_stops_cleanly(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = _start(tmp_path, f"postgresql://postgres@127.0.0.1:{port}/collectbus")
    try:
        _wait_for("outage line", lambda: bool(_lines(tmp_path, "ERROR: store: ")))
        time.sleep(2)
    finally:
        stopped = collectbus("daemon", "stop", cwd=tmp_path, env=env)
    assert_stopped(stopped, tmp_path, env)
    text = _log(tmp_path)
    assert "Traceback" not in text
    assert len(_lines(tmp_path, ": ERROR: ")) == 1, text
    (closing,) = _lines(tmp_path, "collectbus daemon stopped: ")
    counts = re.search(
        r"stopped: 0 collections, (\d+) write failures, (\d+) collections not", closing
    )
    assert counts is not None, closing
    # It tried, and what it kept is reported as not written.
    assert int(counts[1]) >= 1
    assert int(counts[2]) >= 2


def test_a_schema_newer_than_collectbus_stops_the_daemon_when_it_connects(
    tmp_path: Path, postgres_url: str, proxy: TcpProxy
) -> None:
    open_store(postgres_url).close()
    engine = sa.create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999_future'"))
    engine.dispose()
    env = _start(tmp_path, _via(postgres_url, proxy.port))
    try:
        _wait_for("outage line", lambda: bool(_lines(tmp_path, "ERROR: store: ")))
        proxy.restore()
        _wait_for("exit", lambda: not (tmp_path / "collectbus.pid").exists())
    finally:
        collectbus("daemon", "stop", cwd=tmp_path, env=env)
    errors = _lines(tmp_path, "collectbus: error: ")
    assert len(errors) == 1, _log(tmp_path)
    assert "schema at revision 9999_future, newer than this collectbus" in errors[0]
    with open_store(postgres_url, migrate=False) as store:
        assert store.collection_log(limit=10) == []

    # Reachable at start: `daemon start` refuses with the same error.
    refused = collectbus("daemon", "start", cwd=tmp_path, env=env)
    assert refused.returncode == 1
    assert refused.stderr.startswith("collectbus: error: ")
    assert "newer than this collectbus" in refused.stderr
    assert "upgrade collectbus" in refused.stderr
    assert not (tmp_path / "collectbus.pid").exists()
