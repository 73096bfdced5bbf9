"""A PostgreSQL that stops answering is an outage with a clear line, never a hang.

The database is the real local PostgreSQL, reached through a TCP forwarder
(:class:`TcpProxy`) that the test stalls: connections stay open and the
forwarder's kernel still acknowledges every packet, but nothing reaches the
server or comes back, as with a frozen proxy or network. Each write runs in
a thread joined with a generous bound, so that a write that hangs fails the
test instead of hanging the suite.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator

import psycopg
import pytest
from sqlalchemy.engine import make_url

from collectbus.bus import Result
from collectbus.clock import NS_PER_S, FakeClock
from collectbus.errors import StoreError
from collectbus.pipeline.sink import STORE_RETRY_MAX_S, StoreSink
from collectbus.records import CollectionEvent
from collectbus.store import Store
from collectbus.store import open as open_store
from tests.integration.tcp_proxy import TcpProxy

pytestmark = pytest.mark.postgres

T0 = 1_800_000_000 * NS_PER_S
TIMEOUT_S = 1.0
#: A write that has not returned by then is hanging.
HANG_S = 60.0
PASSWORD = "s3cret"  # trust authentication ignores it; the logs must not show it


@pytest.fixture
def proxy(postgres_url: str) -> Iterator[TcpProxy]:
    url = make_url(postgres_url)
    forwarder = TcpProxy((url.host or "127.0.0.1", url.port or 5432))
    yield forwarder
    forwarder.close()


@pytest.fixture
def store(postgres_url: str, proxy: TcpProxy) -> Iterator[Store]:
    via = make_url(postgres_url).set(port=proxy.port, password=PASSWORD)
    with open_store(via.render_as_string(hide_password=False), statement_timeout_s=TIMEOUT_S) as s:
        yield s


def _event(i: int) -> CollectionEvent:
    return CollectionEvent(source="host", host="h1", started_ns=T0 + i, duration_ns=1, status="ok")


def _within_bound(call: Callable[[], object]) -> BaseException | None:
    """Run ``call`` in a thread; the exception it raised, None if it returned."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            call()
        except BaseException as err:  # noqa: BLE001 (handed to the test)
            outcome.append(err)
        else:
            outcome.append(None)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(HANG_S)
    assert outcome, f"still blocked after {HANG_S:g} s"
    return outcome[0]


def test_a_write_to_a_stalled_database_fails_with_one_line_and_the_next_works(
    store: Store, proxy: TcpProxy
) -> None:
    store.write([_event(1)])  # a pooled connection, through the forwarder
    proxy.stall()
    err = _within_bound(lambda: store.write([_event(2)]))
    assert isinstance(err, StoreError)
    message = str(err)
    assert f"no answer within {TIMEOUT_S:g} s (store.statement_timeout)" in message
    assert store.url in message
    assert PASSWORD not in message
    assert "\n" not in message
    proxy.resume()
    assert _within_bound(lambda: store.write([_event(3)])) is None
    assert [r["started_ns"] for r in store.collection_log()] == [T0 + 1, T0 + 3]


def test_a_read_from_a_stalled_database_fails_too(store: Store, proxy: TcpProxy) -> None:
    store.hosts()
    proxy.stall()
    err = _within_bound(store.hosts)
    assert isinstance(err, StoreError)
    assert "read hosts failed: no answer within" in str(err)


def test_a_statement_the_server_holds_is_cancelled_by_the_server(
    store: Store, postgres_url: str
) -> None:
    # Another session holds the table: the server itself ends the wait.
    with psycopg.connect(postgres_url) as other:
        other.execute("LOCK TABLE collection_log IN ACCESS EXCLUSIVE MODE")
        err = _within_bound(lambda: store.write([_event(1)]))
    assert isinstance(err, StoreError)
    assert "cancelled by the statement timeout" in str(err)


def test_the_daemon_writer_treats_a_stalled_database_as_an_outage(
    store: Store, proxy: TcpProxy, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock(start_ns=T0)
    sink = StoreSink(store, clock=clock, compact_after_s=3600, compact_every_s=600)

    def result(i: int) -> Result:
        return Result(
            collector="host", seq=i, tick_ns=T0 + i, records=(), event=_event(i), stale=False
        )

    with caplog.at_level(logging.INFO, logger="collectbus.daemon"):
        sink(result(1))
        proxy.stall()
        assert _within_bound(lambda: sink(result(2))) is None
        for i in range(3, 6):  # collecting goes on into the buffer
            clock.advance(NS_PER_S)
            sink(result(i))
        assert sink.pending >= 4
        proxy.resume()
        clock.advance(int(STORE_RETRY_MAX_S * NS_PER_S))
        assert _within_bound(lambda: sink(result(6))) is None
    assert (sink.pending, sink.lost_collections) == (0, 0)
    assert len(store.collection_log()) == 6
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"store: {store.url}: write failed: no answer within")
    assert PASSWORD not in caplog.text
    assert " is back after " in caplog.text
