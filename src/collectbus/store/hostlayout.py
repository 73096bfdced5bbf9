"""The wide host tables' layouts: names, device keys and columns, without SQLAlchemy.

The columns of each wide table are the fields of the matching row type in
:mod:`collectbus.records` (or the key lists in :mod:`collectbus.procfields`).
:mod:`collectbus.store.schema` builds the SQLAlchemy tables from these
layouts, so there is one definition of each; the readers of host samples
(:mod:`collectbus.store.hostqueries`, :mod:`collectbus.store.hostrows`) need
only the layouts, and a command that reads host samples builds no table
(docs/architecture.md, "The store layout").
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Literal

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


def _layout(name: str, key: str | None, fields: Fields) -> WideLayout:
    return WideLayout(
        name=name,
        key=key,
        columns=tuple(f for f, _, _ in fields),
        kinds=tuple(k for _, k, _ in fields),
        nullable=frozenset(f for f, _, n in fields if n),
    )


# meminfo and vmstat depend on the kernel, so every column may be NULL.
_MEM_FIELDS: Fields = tuple((c, "int", True) for c in MEMINFO_COLUMNS)
_VMSTAT_FIELDS: Fields = tuple((c, "int", True) for c in VMSTAT_COLUMNS)

#: The wide tables, by name, in the order they are created and written.
WIDE_LAYOUTS: dict[str, WideLayout] = {
    w.name: w
    for w in (
        _layout("host_cpu", "cpu", _kinds_of(CpuRow)),
        _layout("host_stat", None, _kinds_of(StatRow)),
        _layout("host_mem", None, _MEM_FIELDS),
        _layout("host_vmstat", None, _VMSTAT_FIELDS),
        _layout("host_disk", "device", _kinds_of(DiskRow)),
        _layout("host_net", "iface", _kinds_of(NetRow)),
        _layout("host_load", None, _kinds_of(LoadRow)),
        _layout("host_psi", "resource", _kinds_of(PsiRow)),
        _layout("host_uptime", None, _kinds_of(UptimeRow)),
        _layout("host_cgroup", "cgroup", _kinds_of(CgroupRow)),
    )
}
