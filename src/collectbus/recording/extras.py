"""What a recorded sample carries besides its :class:`~collectbus.records.HostSample`.

MLCommons storage writes every key the kernel prints in ``/proc/meminfo`` and
``/proc/vmstat``; a HostSample has a column per known key only
(:mod:`collectbus.procfields`). The keys no column knows are kept here, with
their values as the file prints them (kB, pages or counts), so that a result
file has every key and an MLCommons file read back loses none. Here too: the
machine's own name (``hostname``, which for a host requested as ``localhost``
is this machine's name), the ``errors`` keys as the file had them, and any
other key of a sample read from a file, kept as it was.

:class:`ExtrasTable` hands the extras of a collection from a recorder's
collector (a pool thread) to the recorder's result buffer (a subscriber
thread): the collector puts them under the sample's time, the buffer takes
them with the sample.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from collectbus.procfields import MEMINFO_KEYS, VMSTAT_COLUMNS

__all__ = ["NO_EXTRAS", "ExtrasTable", "SampleExtras", "meminfo_extras", "vmstat_extras"]

_MEMINFO_KNOWN = frozenset(key.encode() for key, _ in MEMINFO_KEYS)
_VMSTAT_KNOWN = frozenset(key.encode() for key in VMSTAT_COLUMNS)
# Extras waiting for the buffer, per collector; a result the bus never
# delivers (a late one) leaves its entry, and the oldest go past this many.
_TABLE_LIMIT = 64


@dataclass(frozen=True, slots=True, kw_only=True)
class SampleExtras:
    """The parts of one recorded sample that a HostSample has no field for."""

    #: The machine's name as it calls itself; None: the requested host name.
    hostname: str | None = None
    #: meminfo keys no column knows: ``{key: value as printed}`` (kB, or a count).
    meminfo: Mapping[str, int] = field(default_factory=dict)
    #: vmstat keys no column knows: ``{key: value}``.
    vmstat: Mapping[str, int] = field(default_factory=dict)
    #: The ``errors`` object as written (``{"ssh": message}``); None: keyed by file.
    errors: Mapping[str, str] | None = None
    #: Keys of a sample read from a file that collectbus does not interpret.
    other: Mapping[str, Any] = field(default_factory=dict)


NO_EXTRAS = SampleExtras()


def _int(token: bytes) -> int | None:
    try:
        return int(token)
    except ValueError:
        return None


def meminfo_extras(data: bytes) -> dict[str, int]:
    """``Key: value [kB]`` lines of /proc/meminfo whose key no column knows.

    Lines the meminfo parser refuses are left out here; it names them.
    """
    out: dict[str, int] = {}
    for line in data.splitlines():
        key, colon, rest = line.partition(b":")
        key = key.strip()
        if not colon or key in _MEMINFO_KNOWN:
            continue
        fields = rest.split()
        value = _int(fields[0]) if fields else None
        if value is not None and key:
            out[key.decode("utf-8", "backslashreplace")] = value
    return out


def vmstat_extras(data: bytes) -> dict[str, int]:
    """``key value`` lines of /proc/vmstat whose key no column knows."""
    out: dict[str, int] = {}
    for line in data.splitlines():
        fields = line.split()
        if len(fields) != 2 or fields[0] in _VMSTAT_KNOWN:
            continue
        value = _int(fields[1])
        if value is not None:
            out[fields[0].decode("utf-8", "backslashreplace")] = value
    return out


class ExtrasTable:
    """Extras by sample time, from the collecting thread to the buffering one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_time: OrderedDict[int, SampleExtras] = OrderedDict()

    def put(self, time_ns: int, extras: SampleExtras) -> None:
        with self._lock:
            self._by_time[time_ns] = extras
            while len(self._by_time) > _TABLE_LIMIT:
                self._by_time.popitem(last=False)

    def take(self, time_ns: int) -> SampleExtras:
        with self._lock:
            return self._by_time.pop(time_ns, NO_EXTRAS)
