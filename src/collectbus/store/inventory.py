"""Host inventories in and out of ``host_inventory``: one row per host and change.

An inventory changes rarely (a disk added, a kernel upgraded) but is collected
every few minutes, so a document is stored only when it differs from the
host's latest stored one. Documents are compared as written (the collector
writes them with sorted keys).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlalchemy import Connection, insert, select

from collectbus.records import HostInventory
from collectbus.store.schema import host_inventory, hosts


def write_inventories(
    conn: Connection, records: Iterable[HostInventory], host_ids: Mapping[str, int]
) -> int:
    """Insert each document that changed; return how many were inserted."""
    c = host_inventory.c
    inserted = 0
    for record in sorted(records, key=lambda r: r.time_ns):
        host_id = host_ids[record.host]
        latest = conn.execute(
            select(c.document)
            .where(c.host_id == host_id, c.time_ns <= record.time_ns)
            .order_by(c.time_ns.desc(), c.id.desc())
            .limit(1)
        ).scalar_one_or_none()
        if latest == record.document:
            continue
        conn.execute(
            insert(host_inventory).values(
                host_id=host_id, time_ns=record.time_ns, document=record.document
            )
        )
        inserted += 1
    return inserted


def read_inventories(
    conn: Connection, *, host: str | None = None, history: bool = False
) -> list[dict[str, object]]:
    """``host``, ``time_ns`` and ``document`` (text), per host by name: the latest
    document of each host, or every stored change with ``history``."""
    c = host_inventory.c
    query = (
        select(hosts.c.name.label("host"), c.time_ns, c.document, c.id)
        .join(hosts, hosts.c.id == c.host_id)
        .order_by(hosts.c.name, c.time_ns, c.id)
    )
    if host is not None:
        query = query.where(hosts.c.name == host)
    rows = [dict(row) for row in conn.execute(query).mappings()]
    if not history:
        latest: dict[object, dict[str, object]] = {}
        for row in rows:
            latest[row["host"]] = row
        rows = list(latest.values())
    for row in rows:
        del row["id"]
    return rows
