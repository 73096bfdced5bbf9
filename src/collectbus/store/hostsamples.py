"""Host samples into the wide tables.

Writing turns :class:`~collectbus.records.HostSample` records into one tuple
per wide-table row and bulk-inserts them (:func:`collectbus.store.bulk.bulk_insert`:
``executemany`` on SQLite, ``COPY`` on PostgreSQL). Reading is
:mod:`collectbus.store.hostqueries`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from sqlalchemy import Connection

from collectbus.procfields import MEMINFO_COLUMNS, VMSTAT_COLUMNS
from collectbus.records import HostSample
from collectbus.store.bulk import RowTuple, bulk_insert
from collectbus.store.dberrors import RefusedError
from collectbus.store.quarantine import Refused
from collectbus.store.schema import WideTable


def sample_rows(
    samples: Iterable[HostSample],
    host_ids: Mapping[str, int],
    refused: list[Refused] | None = None,
) -> dict[str, list[RowTuple]]:
    """One list of ``(host_id, time_ns, *fields)`` tuples per wide table.

    A meminfo or vmstat tuple whose length is not the table's is left out and
    appended to ``refused``; without ``refused``, it is a :class:`RefusedError`.
    """
    cpu: list[RowTuple] = []
    stat: list[RowTuple] = []
    mem: list[RowTuple] = []
    vmstat: list[RowTuple] = []
    disk: list[RowTuple] = []
    net: list[RowTuple] = []
    load: list[RowTuple] = []
    psi: list[RowTuple] = []
    uptime: list[RowTuple] = []
    cgroup: list[RowTuple] = []
    for s in samples:
        head = (host_ids[s.host], s.time_ns)
        cpu.extend(head + row for row in s.cpu)
        if s.stat is not None:
            stat.append(head + s.stat)
        if s.mem is not None and _fits(s, "mem", s.mem, len(MEMINFO_COLUMNS), refused):
            mem.append(head + s.mem)
        if s.vmstat is not None and _fits(s, "vmstat", s.vmstat, len(VMSTAT_COLUMNS), refused):
            vmstat.append(head + s.vmstat)
        disk.extend(head + row for row in s.disk)
        net.extend(head + row for row in s.net)
        if s.load is not None:
            load.append(head + s.load)
        psi.extend(head + row for row in s.psi)
        if s.uptime is not None:
            uptime.append(head + s.uptime)
        if s.cgroup is not None:
            cgroup.append(head + s.cgroup)
    return {
        "host_cpu": cpu,
        "host_stat": stat,
        "host_mem": mem,
        "host_vmstat": vmstat,
        "host_disk": disk,
        "host_net": net,
        "host_load": load,
        "host_psi": psi,
        "host_uptime": uptime,
        "host_cgroup": cgroup,
    }


def _fits(
    sample: HostSample,
    name: str,
    values: tuple[object, ...],
    width: int,
    refused: list[Refused] | None,
) -> bool:
    if len(values) == width:
        return True
    reason = f"sample.{name} has {len(values)} values, host_{name} has {width} columns"
    if refused is None:
        raise RefusedError(
            f"host {sample.host!r}: {reason}",
            hint="the collector and the store disagree on the column layout (procfields.py)",
        )
    refused.append(Refused(f"host_{name}", None, values, reason, sample.host, sample.time_ns))
    return False


def insert_rows(conn: Connection, wide: WideTable, rows: Sequence[RowTuple], *, copy: bool) -> None:
    """Bulk-insert rows into one wide table, inside the caller's transaction."""
    bulk_insert(conn, wide.name, ("host_id", "time_ns", *wide.columns), rows, copy=copy)
