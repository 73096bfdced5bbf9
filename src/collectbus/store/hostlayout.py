"""The wide host tables' layouts: names, device keys and columns, without SQLAlchemy.

The columns of each wide table are the fields of the matching row type in
:mod:`collectbus.records` (or the key lists in :mod:`collectbus.procfields`).
:mod:`collectbus.store.schema` builds the SQLAlchemy tables from these
layouts, so there is one definition of each; the readers of host samples
(:mod:`collectbus.store.hostqueries`, :mod:`collectbus.store.hostrows`) need
only the layouts, and a command that reads host samples builds no table
(docs/architecture.md, "The store layout").

:data:`WIDE_KEYS` names the tables and their device keys;
:func:`wide_layouts` lays out their columns, from the record types, on first
use: a reader that names the columns it wants (``collectbus host``) reads
recent rows without importing :mod:`collectbus.records`.
"""

from __future__ import annotations

import functools
import typing
from dataclasses import dataclass
from typing import Literal

#: Chunks hold one host, one table and one hour of samples.
HOUR_NS = 3600 * 1_000_000_000

#: The table of host names (``id``, ``name``, ``first_seen_ns``, ``last_seen_ns``).
HOSTS = "hosts"
#: The compacted layer: one chunk per host, wide table and hour.
HOST_CHUNKS = "host_chunks"

Kind = Literal["int", "float", "text"]


@dataclass(frozen=True, slots=True)
class WideLayout:
    """One wide table: its name, key column and value columns with their kinds."""

    name: str
    #: The device column (``cpu``, ``device``, ``iface``), or None for one row per tick.
    key: str | None
    #: Every column after ``host_id`` and ``time_ns``, in record order.
    columns: tuple[str, ...]
    kinds: tuple[Kind, ...]
    nullable: frozenset[str]

    def kind(self, column: str) -> Kind:
        return self.kinds[self.columns.index(column)]


Fields = tuple[tuple[str, Kind, bool], ...]


def _kinds_of(row_type: type) -> Fields:
    """(field, kind, nullable) of each field of a record row type."""
    hints = typing.get_type_hints(row_type)
    out: list[tuple[str, Kind, bool]] = []
    for name in row_type._fields:  # type: ignore[attr-defined]
        args = typing.get_args(hints[name]) or (hints[name],)
        base = next(a for a in args if a is not type(None))
        kind: Kind = "text" if base is str else "float" if base is float else "int"
        out.append((name, kind, type(None) in args))
    return tuple(out)


def _layout(name: str, fields: Fields) -> WideLayout:
    return WideLayout(
        name=name,
        key=WIDE_KEYS[name],
        columns=tuple(f for f, _, _ in fields),
        kinds=tuple(k for _, k, _ in fields),
        nullable=frozenset(f for f, _, n in fields if n),
    )


#: The wide tables, in the order they are created and written, and the device
#: column of each (None: one row per host and tick).
WIDE_KEYS: dict[str, str | None] = {
    "host_cpu": "cpu",
    "host_stat": None,
    "host_mem": None,
    "host_vmstat": None,
    "host_disk": "device",
    "host_net": "iface",
    "host_load": None,
    "host_psi": "resource",
    "host_uptime": None,
    "host_cgroup": "cgroup",
}


@functools.cache
def wide_layouts() -> dict[str, WideLayout]:
    """The wide tables' layouts, by name, in the order of :data:`WIDE_KEYS`."""
    from collectbus.procfields import MEMINFO_COLUMNS, VMSTAT_COLUMNS
    from collectbus.records import (
        CgroupRow,
        CpuRow,
        DiskRow,
        LoadRow,
        NetRow,
        PsiRow,
        StatRow,
        UptimeRow,
    )

    # meminfo and vmstat depend on the kernel, so every column may be NULL.
    fields: dict[str, Fields] = {
        "host_cpu": _kinds_of(CpuRow),
        "host_stat": _kinds_of(StatRow),
        "host_mem": tuple((c, "int", True) for c in MEMINFO_COLUMNS),
        "host_vmstat": tuple((c, "int", True) for c in VMSTAT_COLUMNS),
        "host_disk": _kinds_of(DiskRow),
        "host_net": _kinds_of(NetRow),
        "host_load": _kinds_of(LoadRow),
        "host_psi": _kinds_of(PsiRow),
        "host_uptime": _kinds_of(UptimeRow),
        "host_cgroup": _kinds_of(CgroupRow),
    }
    return {name: _layout(name, fields[name]) for name in WIDE_KEYS}
