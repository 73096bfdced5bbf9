"""cgroup v2: a container's own view of its CPU, memory, io and pids.

The parsers are pure (bytes in); :func:`cgroup_dir` decides, from injected
paths and environment, whether the collector runs in a container and which
cgroup directory is its own. Formats: ``Documentation/admin-guide/cgroup-v2.rst``.

- flat keyed files, ``key value`` per line: ``cpu.stat``, ``memory.stat``;
- single values: ``memory.current``, ``pids.current``; ``memory.max`` may be ``max``;
- ``cpu.max``: ``$MAX $PERIOD``, ``$MAX`` possibly ``max``;
- nested keyed ``io.stat``: ``MAJ:MIN rbytes=.. wbytes=.. rios=.. wios=.. dbytes=.. dios=..``.

Numbers follow :mod:`.numbers`: a value out of range (or a sum of ``io.stat``
that passes ``2**63 - 1``) is None, named ``cgroup.<file>.<key>`` in the
``replaced`` list a parser is given.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Mapping

from collectbus.collectors.host.numbers import counter
from collectbus.errors import ParseError
from collectbus.records import CgroupRow
from collectbus.values import fit_counter

__all__ = [
    "CGROUP_FILES",
    "cgroup_dir",
    "cgroup_row",
    "in_container",
    "parse_cpu_max",
    "parse_cpu_stat",
    "parse_flat_keyed",
    "parse_io_stat",
    "parse_memory_stat",
    "parse_single_value",
]

#: The files read per sample, relative to the cgroup directory.
CGROUP_FILES = (
    "cpu.stat",
    "cpu.max",
    "memory.current",
    "memory.max",
    "memory.stat",
    "io.stat",
    "pids.current",
)

_CPU_STAT_KEYS = (
    b"usage_usec",
    b"user_usec",
    b"system_usec",
    b"nr_periods",
    b"nr_throttled",
    b"throttled_usec",
)
_MEMORY_STAT_KEYS = (b"anon", b"file", b"kernel", b"shmem", b"pgfault", b"pgmajfault")
_IO_KEYS = (b"rbytes", b"wbytes", b"rios", b"wios")


def _shown(raw: bytes) -> str:
    text = raw.decode("utf-8", "backslashreplace")
    return repr(text if len(text) <= 60 else text[:60] + "...")


def _lines(data: bytes) -> list[bytes]:
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return lines


def _replaced(replaced: list[str] | None, source: str, key: bytes = b"") -> None:
    if replaced is not None:
        name = f"cgroup.{os.path.basename(source)}"
        replaced.append(f"{name}.{key.decode('utf-8', 'backslashreplace')}" if key else name)


def parse_flat_keyed(
    data: bytes,
    source: str,
    replaced: list[str] | None = None,
    *,
    stored: Collection[bytes] | None = None,
) -> dict[bytes, int | None]:
    """A flat keyed file (``cpu.stat``, ``memory.stat``): key to value.

    A value out of range is None; it is named in ``replaced`` when its key is
    one of ``stored`` (the keys a row keeps; None: every key).
    """
    out: dict[bytes, int | None] = {}
    for number, line in enumerate(_lines(data), 1):
        fields = line.split()
        if len(fields) != 2:
            raise ParseError(source, number, f"not a 'key value' line: {_shown(line)}")
        try:
            value = out[fields[0]] = counter(fields[1])
        except ValueError as err:
            raise ParseError(source, number, f"not an integer: {_shown(fields[1])}") from err
        if value is None and (stored is None or fields[0] in stored):
            _replaced(replaced, source, fields[0])
    return out


def parse_cpu_stat(
    data: bytes, source: str, replaced: list[str] | None = None
) -> dict[bytes, int | None]:
    """``cpu.stat``; only the values of the keys a row keeps are named when out of range."""
    return parse_flat_keyed(data, source, replaced, stored=_CPU_STAT_KEYS)


def parse_memory_stat(
    data: bytes, source: str, replaced: list[str] | None = None
) -> dict[bytes, int | None]:
    """``memory.stat``; only the values of the keys a row keeps are named when out of range."""
    return parse_flat_keyed(data, source, replaced, stored=_MEMORY_STAT_KEYS)


def parse_single_value(
    data: bytes, source: str, replaced: list[str] | None = None, *, allow_max: bool = False
) -> int | None:
    """One integer (``memory.current``); ``max`` is None where allowed (``memory.max``)."""
    lines = _lines(data)
    token = lines[0].strip() if len(lines) == 1 else b""
    if allow_max and token == b"max":
        return None
    try:
        value = counter(token)
    except ValueError as err:
        raise ParseError(source, 1, f"expected one integer: {_shown(data)}") from err
    if value is None:
        _replaced(replaced, source)
    return value


def parse_cpu_max(
    data: bytes, source: str, replaced: list[str] | None = None
) -> tuple[int | None, int | None]:
    """``cpu.max``: (quota in us or None for ``max``, period in us)."""
    lines = _lines(data)
    fields = lines[0].split() if len(lines) == 1 else []
    if len(fields) != 2:
        raise ParseError(source, 1, f"expected '$MAX $PERIOD': {_shown(data)}")
    try:
        quota = None if fields[0] == b"max" else counter(fields[0])
        period = counter(fields[1])
    except ValueError as err:
        raise ParseError(source, 1, f"not an integer: {_shown(data)}") from err
    if quota is None and fields[0] != b"max":
        _replaced(replaced, source, b"quota")
    if period is None:
        _replaced(replaced, source, b"period")
    return quota, period


def parse_io_stat(
    data: bytes, source: str, replaced: list[str] | None = None
) -> dict[bytes, int | None]:
    """``io.stat``, summed over its devices: rbytes, wbytes, rios, wios (and any other key).

    A sum with a value out of range, or that passes ``2**63 - 1``, is None.
    """
    out: dict[bytes, int | None] = dict.fromkeys(_IO_KEYS, 0)
    bad: set[bytes] = set()
    for number, line in enumerate(_lines(data), 1):
        fields = line.split()
        if not fields or fields[0].count(b":") != 1:
            raise ParseError(source, number, f"expected 'MAJ:MIN key=value ...': {_shown(line)}")
        for field in fields[1:]:
            key, eq, raw = field.partition(b"=")
            if not eq:
                raise ParseError(source, number, f"not a key=value pair: {_shown(field)}")
            try:
                value = counter(raw)
            except ValueError as err:
                raise ParseError(source, number, f"not an integer: {_shown(field)}") from err
            total = out.get(key, 0)
            out[key] = None if value is None or total is None else fit_counter(total + value)
            if out[key] is None and key not in bad:
                bad.add(key)
                if key in _IO_KEYS:  # the sums a row keeps
                    _replaced(replaced, source, key)
    return out


def cgroup_row(
    cgroup: str,
    *,
    cpu_stat: Mapping[bytes, int | None] | None = None,
    cpu_max: tuple[int | None, int | None] | None = None,
    memory_current: int | None = None,
    memory_max: int | None = None,
    memory_stat: Mapping[bytes, int | None] | None = None,
    io_stat: Mapping[bytes, int | None] | None = None,
    pids_current: int | None = None,
) -> CgroupRow:
    """One row from the parsed files; a file not read (None) leaves its columns None."""
    cpu = cpu_stat or {}
    mem = memory_stat or {}
    io = io_stat or {}
    quota, period = cpu_max if cpu_max is not None else (None, None)
    values: list[str | int | None] = [cgroup]
    values += [cpu.get(k) for k in _CPU_STAT_KEYS]
    values += [quota, period, memory_current, memory_max]
    values += [mem.get(k) for k in _MEMORY_STAT_KEYS]
    values += [io.get(k) if io_stat is not None else None for k in _IO_KEYS]
    values.append(pids_current)
    return CgroupRow._make(values)


# ------------------------------------------------------------------ detection


def own_cgroup_path(self_cgroup: bytes) -> str | None:
    """The v2 path of ``/proc/self/cgroup`` (its ``0::/path`` line), or None."""
    for line in self_cgroup.split(b"\n"):
        if line.startswith(b"0::"):
            return line[3:].strip().decode("utf-8", "backslashreplace") or "/"
    return None


def in_container(
    self_cgroup: bytes | None, env: Mapping[str, str], exists: Callable[[str], bool]
) -> bool:
    """True inside a container: a v2 cgroup other than ``/``, ``/.dockerenv`` or ``$container``."""
    path = own_cgroup_path(self_cgroup) if self_cgroup is not None else None
    return (path is not None and path != "/") or exists("/.dockerenv") or "container" in env


def cgroup_dir(
    cgroup_root: str, self_cgroup: bytes | None, *, limits_only: bool = False
) -> str | None:
    """The directory of this process's own v2 cgroup under ``cgroup_root``, or None.

    With a private cgroup namespace (Docker's default on v2) the path is ``/``
    and the mounted root is the container's own cgroup; without one, the path
    names it under the root. A hybrid host mounts v2 at ``unified/``.
    ``limits_only`` asks for a cgroup with limits files (``cpu.max`` or
    ``memory.max``): the host's root cgroup has none, and its figures are the
    host's own, which /proc gives already (cgroup-v2.rst: "the root cgroup ...
    doesn't have the interface files").
    """
    path = own_cgroup_path(self_cgroup) if self_cgroup is not None else "/"
    if path is None:
        return None
    markers = ("cpu.max", "memory.max") if limits_only else ("cgroup.controllers", "cpu.stat")
    for root in (cgroup_root, os.path.join(cgroup_root, "unified")):
        candidate = os.path.normpath(os.path.join(root, path.lstrip("/")))
        for where in (candidate, root):
            if any(os.path.exists(os.path.join(where, marker)) for marker in markers):
                return where
    return None
