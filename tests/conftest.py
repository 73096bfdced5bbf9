"""Fixtures shared by all tests.

``store_url`` runs a test once on a fresh SQLite file and once on a fresh
PostgreSQL database. The PostgreSQL server is taken from
``COLLECTBUS_TEST_PG_URL`` (default: the local server's ``test`` database);
each test gets its own ``collectbus_test_<random>`` database, dropped after.
Without a reachable server the PostgreSQL cases are skipped, except when
``CI=true``: then they fail, so that CI can never pass by skipping.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import psycopg
import pytest
from psycopg import sql

PG_ADMIN_URL = os.environ.get("COLLECTBUS_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL is required when CI=true: {reason}")
    pytest.skip(f"PostgreSQL is not reachable at {PG_ADMIN_URL}: {reason}")


def _uses_postgres(item: pytest.Item) -> bool:
    if "postgres_url" in getattr(item, "fixturenames", ()):
        return True
    # store_url or migrated_store_url's PostgreSQL case, also when a test names it
    # with indirect parametrization (which replaces the param and its mark).
    callspec = getattr(item, "callspec", None)
    params = callspec.params if callspec is not None else {}
    return any(params.get(name) == "postgresql" for name in ("store_url", "migrated_store_url"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``postgres`` every test that uses the ``postgres_url`` fixture, directly
    or through another fixture, or the PostgreSQL case of ``store_url``, so that
    ``-m "not postgres"`` leaves them all out; ``nats`` those that use a NATS
    server (``nats_server``, ``machine_nats_url``)."""
    for item in items:
        if _uses_postgres(item):
            item.add_marker(pytest.mark.postgres)
        if {"nats_server", "machine_nats_url"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.nats)


@pytest.fixture(scope="session")
def _pg_admin_ok() -> str | None:
    """None if the server answers, else why not (checked once per session)."""
    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as err:
        return str(err).strip().splitlines()[0]
    return None


@pytest.fixture
def postgres_url(_pg_admin_ok: str | None) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, as a ``postgresql://`` URL."""
    if _pg_admin_ok is not None:
        _unavailable(_pg_admin_ok)
    name = f"collectbus_test_{secrets.token_hex(6)}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite file in the test's temporary directory (not created yet)."""
    return f"sqlite:///{tmp_path / 'collectbus.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest) -> str:
    """The URL of an empty database: a SQLite file, then a PostgreSQL database."""
    name = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    url: str = request.getfixturevalue(name)
    return url


@pytest.fixture(scope="session")
def _migrated_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file whose schema is at the newest revision, migrated once per session."""
    from collectbus.store import open as open_store

    path = tmp_path_factory.mktemp("template") / "collectbus.db"
    open_store(f"sqlite:///{path}").close()
    with sqlite3.connect(path) as conn:
        # One file: nothing left in a write-ahead log beside it.
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("PRAGMA journal_mode=DELETE")
    return path


@pytest.fixture
def migrated_sqlite_url(tmp_path: Path, _migrated_sqlite_template: Path) -> str:
    """A SQLite file in the test's temporary directory with the newest schema and no
    rows: a copy of a template migrated once (opening it migrates nothing)."""
    path = tmp_path / "collectbus.db"
    shutil.copyfile(_migrated_sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def migrated_store_url(request: pytest.FixtureRequest) -> str:
    """Like ``store_url``, for tests that open the store and never look at how its
    schema came to be: the SQLite file is ``migrated_sqlite_url``, the PostgreSQL
    database an empty one (migrated when the test opens it)."""
    name = "migrated_sqlite_url" if request.param == "sqlite" else "postgres_url"
    url: str = request.getfixturevalue(name)
    return url


# ------------------------------------------------------------------------ NATS
#
# Tests marked ``nats`` use a real nats-server with JetStream: one started per
# test on a free port (``nats_server``), or the machine's own at
# COLLECTBUS_TEST_NATS_URL (default nats://127.0.0.1:4222). Without the binary
# (or the server) they are skipped with the reason, except when ``CI=true``.

NATS_SERVER_BIN = os.environ.get("COLLECTBUS_TEST_NATS_SERVER") or shutil.which(
    "nats-server", path=f"{os.environ.get('PATH', '')}:/usr/sbin:/usr/local/sbin"
)
NATS_URL = os.environ.get("COLLECTBUS_TEST_NATS_URL", "nats://127.0.0.1:4222")


def nats_unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI") == "true":
        pytest.fail(f"NATS is required when CI=true: {reason}")
    pytest.skip(f"NATS is not available: {reason}")


class NatsServer:
    """One nats-server with JetStream, its store in a folder of the test's."""

    def __init__(self, store_dir: Path, port: int) -> None:
        self.store_dir = store_dir
        self.port = port
        self.url = f"nats://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert NATS_SERVER_BIN is not None
        with (self.store_dir / "nats-server.log").open("ab") as log:
            self.process = subprocess.Popen(
                [NATS_SERVER_BIN, "-a", "127.0.0.1", "-p", str(self.port), "-js",
                 "-sd", str(self.store_dir)],
                stdout=log,
                stderr=log,
            )  # fmt: skip
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"nats-server exited with {self.process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    if sock.recv(4).startswith(b"INFO"):
                        return
            except OSError:
                time.sleep(0.05)
        pytest.fail(f"nats-server did not listen on port {self.port} within 20 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    """A nats-server with JetStream of this test's own, on a free port."""
    if NATS_SERVER_BIN is None:
        nats_unavailable("no nats-server binary on PATH or in /usr/sbin")
    server = NatsServer(tmp_path / "nats", _free_port())
    server.store_dir.mkdir()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def machine_nats_url() -> str:
    """The machine's NATS server (COLLECTBUS_TEST_NATS_URL), if it answers."""
    from urllib.parse import urlsplit

    parts = urlsplit(NATS_URL)
    try:
        with socket.create_connection((parts.hostname, parts.port or 4222), timeout=2) as sock:
            if not sock.recv(4).startswith(b"INFO"):
                nats_unavailable(f"{NATS_URL} is not a NATS server")
    except OSError as err:
        nats_unavailable(f"{NATS_URL}: {err}")
    return NATS_URL
