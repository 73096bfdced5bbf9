"""Collections written once, however often they are delivered.

A collection is identified by its :class:`~collectbus.records.CollectionEvent`:
its source, host and start time, the row it leaves in ``collection_log``
(written in the collection's own transaction). A consumer that may be handed
a collection again (``collectbus ingest``: JetStream redelivers what was not
acknowledged) writes through :meth:`collectbus.store.Store.write_new`, which
leaves out, in the transaction that writes the rest, every collection whose
``collection_log`` row is there already, so that a replay is a no-op for
every table it touches (wide tables, calls, inventories, the log itself).

Two writers handed the same collection at once (a consumer's acknowledgement
deadline passed while it was still writing, and another got it) must not both
find it missing: on PostgreSQL each write first takes a transaction-scoped
advisory lock per host of its collections (in a fixed order, so that two
writers never wait on each other in a cycle), so the second looks only once
the first has committed or rolled back. SQLite writes one transaction at a
time anyway (``BEGIN IMMEDIATE``).

The look-up uses the ``started_ns`` index of ``collection_log``. Retention
deletes log rows after ``collection_log_days``; a replay older than that
(far past any acknowledgement deadline) would be written again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import Connection

from collectbus.records import CollectionEvent, Record

#: ``(source, host, started_ns)``: a collection's identity.
CollectionKey = tuple[str, str, int]

#: Start times looked up per statement.
LOOKUP_CHUNK = 500


def collection_key(records: Sequence[Record]) -> CollectionKey:
    """The key of one collection: that of its one event; ValueError otherwise."""
    events = [r for r in records if isinstance(r, CollectionEvent)]
    if len(events) != 1:
        raise ValueError(f"a collection holds one CollectionEvent, not {len(events)}")
    event = events[0]
    return event.source, event.host, event.started_ns


def lock_hosts(conn: Connection, hosts: Iterable[str]) -> None:
    """PostgreSQL: take this transaction's advisory lock of each host, in order."""
    if conn.dialect.name != "postgresql":
        return
    for host in sorted(set(hosts)):
        conn.exec_driver_sql(
            "SELECT pg_advisory_xact_lock(hashtextextended(%(key)s, 0))",
            {"key": f"collectbus.collection:{host}"},
        )


def stored_keys(conn: Connection, keys: Iterable[CollectionKey]) -> set[CollectionKey]:
    """Which of ``keys`` have their ``collection_log`` row already."""
    wanted = set(keys)
    times = sorted({k[2] for k in wanted})
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    found: set[CollectionKey] = set()
    for i in range(0, len(times), LOOKUP_CHUNK):
        chunk = times[i : i + LOOKUP_CHUNK]
        rows = conn.exec_driver_sql(
            "SELECT source, host, started_ns FROM collection_log "
            f"WHERE started_ns IN ({', '.join([mark] * len(chunk))})",
            tuple(chunk),
        )
        found.update((str(s), str(h), int(t)) for s, h, t in rows)
    return found & wanted


def new_collections(
    conn: Connection, collections: Sequence[Sequence[Record]]
) -> tuple[list[Sequence[Record]], int]:
    """The collections not stored yet (each once), in order, and how many were left out.

    Takes the hosts' locks first (:func:`lock_hosts`); call it inside the
    transaction that writes what it returns.
    """
    keys = [collection_key(c) for c in collections]
    lock_hosts(conn, (k[1] for k in keys))
    seen = stored_keys(conn, keys)
    out: list[Sequence[Record]] = []
    for key, collection in zip(keys, collections, strict=True):
        if key in seen:
            continue
        seen.add(key)
        out.append(collection)
    return out, len(collections) - len(out)
