"""Every transaction of the store has a deadline: a database that stops
answering is an outage, never a silent hang.

A writer blocked on a database that no longer answers (a stalled network, a
frozen proxy, a hung server) would otherwise wait for as long as it lasts,
and the daemon would neither log nor buffer. So each transaction runs under
``store.statement_timeout``:

- **PostgreSQL, the server side**: ``SET LOCAL statement_timeout`` in each
  transaction, so a statement the server is still working on is cancelled by
  the server itself (SQLSTATE 57014). It is set per transaction, not per
  connection, so other users of the same engine (the aggregates) keep their
  own limits.
- **PostgreSQL, the network**: TCP keepalives and ``tcp_user_timeout`` (libpq
  connection options, unless the URL sets its own) end a connection whose
  peer went away; and the :class:`Watchdog` shuts down the socket of a
  connection whose transaction is still blocked a little past the deadline,
  which is what ends a wait on a peer that still acknowledges packets but
  never answers (a stalled proxy). The waiting driver then fails at once.
- **SQLite**: the busy timeout is at most the deadline, and the watchdog
  interrupts (``sqlite3.Connection.interrupt``) a statement still running
  past it.

The watchdog is one thread for the whole process, started at the first
transaction that has a deadline. It knows which connection a thread holds
from the pool's checkout and checkin events; a connection that is busy while
checked in is one being pinged before checkout (``pool_pre_ping``), which a
stalled network blocks as well, and is shut down too.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import socket
import sqlite3
import threading
import time
import weakref
from typing import Any

from sqlalchemy import Engine, event

#: The default of ``store.statement_timeout``, in seconds.
DEFAULT_STATEMENT_TIMEOUT_S = 30.0
#: The watchdog acts this long after the deadline, so that PostgreSQL's own
#: statement timeout, a clearer error, comes first when the server answers.
GRACE_S = 2.0


class Ticket:
    """One transaction under watch: :attr:`fired` once the watchdog ended it."""

    __slots__ = ("deadline", "fired", "thread")

    def __init__(self, deadline: float, thread: int) -> None:
        self.deadline = deadline
        self.thread = thread
        self.fired = False


class Guard:
    """The connections of one engine, by the thread that holds them, and how to
    end a blocked one (see the module docstring)."""

    def __init__(self, engine: Engine) -> None:
        self.dialect = engine.dialect.name
        self._lock = threading.Lock()
        self._held: dict[int, list[Any]] = {}  # thread -> DB-API connections
        self._all: weakref.WeakSet[Any] = weakref.WeakSet()
        if self.dialect == "postgresql":  # only PostgreSQL is pinged before checkout
            event.listen(engine, "connect", self._connected)
        event.listen(engine, "checkout", self._checkout)
        event.listen(engine, "checkin", self._checkin)

    def _connected(self, dbapi_connection: Any, _record: Any) -> None:
        with self._lock:
            self._all.add(dbapi_connection)

    def _checkout(self, dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        with self._lock:
            self._held.setdefault(threading.get_ident(), []).append(dbapi_connection)

    def _checkin(self, dbapi_connection: Any, _record: Any) -> None:
        with self._lock:
            for thread, held in list(self._held.items()):
                if dbapi_connection in held:
                    held.remove(dbapi_connection)
                    if not held:
                        del self._held[thread]

    def end(self, thread: int) -> None:
        """End whatever ``thread`` is blocked in on this engine's connections."""
        with self._lock:
            targets = list(self._held.get(thread, ()))
            if self.dialect == "postgresql":
                held = {id(c) for conns in self._held.values() for c in conns}
                targets += [c for c in self._all if id(c) not in held and _busy(c)]
        for connection in targets:
            with contextlib.suppress(Exception):
                _end(connection)


def _busy(connection: Any) -> bool:
    """A psycopg connection with a command in flight."""
    from psycopg import pq

    pgconn = getattr(connection, "pgconn", None)
    return pgconn is not None and pgconn.transaction_status == pq.TransactionStatus.ACTIVE


def _end(connection: Any) -> None:
    if isinstance(connection, sqlite3.Connection):
        connection.interrupt()
        return
    # Shut the socket down under the driver: its wait wakes at once and fails
    # as a lost connection, which the pool then discards.
    fd = connection.pgconn.socket
    with socket.socket(fileno=os.dup(fd)) as sock:
        sock.shutdown(socket.SHUT_RDWR)


class Watchdog:
    """One thread that ends the transactions past their deadline."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Ticket, Guard]] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, guard: Guard, timeout_s: float) -> Ticket:
        """Watch the calling thread's transaction on ``guard``'s engine."""
        ticket = Ticket(time.monotonic() + timeout_s + GRACE_S, threading.get_ident())
        with self._cond:
            heapq.heappush(self._heap, (ticket.deadline, next(self._seq), ticket, guard))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="collectbus-store-deadline", daemon=True
                )
                self._thread.start()
            elif self._heap[0][2] is ticket:
                self._cond.notify()
        return ticket

    def release(self, ticket: Ticket) -> None:
        """The transaction is over (its entry is dropped when it comes up)."""
        with self._cond:
            ticket.deadline = -1.0

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._heap and self._heap[0][2].deadline < 0:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait()
                    continue
                due, _, ticket, guard = self._heap[0]
                now = time.monotonic()
                if due > now:
                    self._cond.wait(due - now)
                    continue
                heapq.heappop(self._heap)
                if ticket.deadline < 0:
                    continue
                # Under the lock: the transaction cannot end (and its thread
                # start another) while its connection is being ended.
                ticket.fired = True
                guard.end(ticket.thread)


#: The one watchdog of the process.
WATCHDOG = Watchdog()
