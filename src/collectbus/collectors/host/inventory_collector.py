"""The host inventory collector (``host-inventory``): one :class:`~collectbus.records.HostInventory`.

It runs in the ``inventory`` tier (every 5 minutes by default), apart from the
per-sample host collector. Its document is a JSON object::

    {"cpu": {...}, "os": {...}, "kernel": {"release": ...},
     "disks": [{"name", "size_bytes", "rotational", "removable"}, ...],
     "nics": [{"name", "speed_mbps", "operstate", "mtu", "address"}, ...],
     "mounts": [{"device", "mountpoint", "fstype", "read_only"}, ...]}

Disks are the entries of ``/sys/block`` (whole disks; sizes in 512-byte
sectors, ``Documentation/ABI/stable/sysfs-block``), NICs those of
``/sys/class/net`` (``Documentation/ABI/testing/sysfs-class-net``). A NIC's
``speed`` is -1 or unreadable (EINVAL) when the link is down or the driver
does not say: the document holds null. A part that cannot be read or is
malformed is reported, named in ``errors`` and left out; the rest is kept.
Files are read bounded (:func:`.procfile.read_once`: regular files only, up to
a size cap). A number out of range (:mod:`collectbus.values`) is null, named
in the collection's details (``out_of_range_fields``: ``disks.sda.size_bytes``).
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Callable

from collectbus.collectors.base import CollectContext
from collectbus.collectors.host.inventory import (
    JsonScalar,
    parse_cpuinfo,
    parse_mounts,
    parse_os_release,
    parse_osrelease,
)
from collectbus.collectors.host.numbers import counter
from collectbus.collectors.host.procfile import read_once
from collectbus.errors import CollectError, ParseError
from collectbus.records import HostInventory
from collectbus.values import fit_counter, out_of_range_details

__all__ = ["InventoryCollector", "read_disks", "read_nics"]


_read_bytes = read_once

#: Reasons a sysfs attribute may refuse to be read that mean "not known".
_NOT_KNOWN = (errno.ENOENT, errno.EINVAL, errno.EOPNOTSUPP)
#: A sysfs attribute is one short line.
_SYS_MAX_BYTES = 4096


def _sys_int(
    path: str,
    *,
    optional: bool = False,
    signed: bool = False,
    replaced: list[str] | None = None,
    name: str = "",
) -> int | None:
    """An integer sysfs attribute; None when ``optional`` and absent or refused (EINVAL).

    A value out of range is None too, and ``name`` is appended to ``replaced``:
    a count or size below zero, or anything past ``2**63 - 1``. ``signed``
    lets a negative value through (a NIC's ``speed`` is -1 when not known).
    """
    try:
        raw = read_once(path, max_bytes=_SYS_MAX_BYTES)
    except CollectError as err:
        cause = err.__cause__
        if optional and isinstance(cause, OSError) and cause.errno in _NOT_KNOWN:
            return None
        raise
    token = raw.strip()
    negative = signed and token.startswith(b"-")
    try:
        value = counter(token[1:] if negative else token)
    except ValueError as err:
        raise ParseError(path, 1, f"not an integer: {raw[:40]!r}") from err
    if value is None:
        if replaced is not None:
            replaced.append(name)
        return None
    return -value if negative else value


def _sys_text(path: str) -> str | None:
    try:
        raw = read_once(path, max_bytes=_SYS_MAX_BYTES)
    except CollectError:
        return None
    return raw.decode("utf-8", "backslashreplace").strip()


def read_disks(
    sys_root: str, errors: list[CollectError], replaced: list[str] | None = None
) -> list[dict[str, JsonScalar]]:
    """``/sys/block``: name, size in bytes, rotational and removable flags.

    A size out of range is None, named ``disks.NAME.size_bytes`` in ``replaced``.
    """
    block = os.path.join(sys_root, "block")
    disks: list[dict[str, JsonScalar]] = []
    for name in sorted(os.listdir(block)):
        base = os.path.join(block, name)
        try:
            sectors = _sys_int(
                os.path.join(base, "size"), replaced=replaced, name=f"disks.{name}.size_bytes"
            )
            rotational = _sys_int(os.path.join(base, "queue", "rotational"), optional=True)
            removable = _sys_int(os.path.join(base, "removable"), optional=True)
        except CollectError as err:
            errors.append(err)
            continue
        size = None if sectors is None else fit_counter(sectors * 512)
        if size is None and sectors is not None and replaced is not None:
            replaced.append(f"disks.{name}.size_bytes")
        disks.append(
            {
                "name": name,
                "size_bytes": size,
                "rotational": None if rotational is None else rotational == 1,
                "removable": None if removable is None else removable == 1,
            }
        )
    return disks


def read_nics(
    sys_root: str, errors: list[CollectError], replaced: list[str] | None = None
) -> list[dict[str, JsonScalar]]:
    """``/sys/class/net``: name, speed in Mb/s (None if unknown), operstate, MTU, address.

    A speed or MTU out of range is None, named ``nics.NAME.mtu`` in ``replaced``.
    """
    net = os.path.join(sys_root, "class", "net")
    nics: list[dict[str, JsonScalar]] = []
    for name in sorted(os.listdir(net)):
        base = os.path.join(net, name)
        try:
            speed = _sys_int(
                os.path.join(base, "speed"),
                optional=True,
                signed=True,
                replaced=replaced,
                name=f"nics.{name}.speed_mbps",
            )
            mtu = _sys_int(
                os.path.join(base, "mtu"),
                optional=True,
                replaced=replaced,
                name=f"nics.{name}.mtu",
            )
        except CollectError as err:
            errors.append(err)
            continue
        nics.append(
            {
                "name": name,
                "speed_mbps": speed if speed is not None and speed >= 0 else None,
                "operstate": _sys_text(os.path.join(base, "operstate")),
                "mtu": mtu,
                "address": _sys_text(os.path.join(base, "address")),
            }
        )
    return nics


class InventoryCollector:
    """Reads the inventory of one host: cpuinfo, OS, kernel, disks, NICs, mounts.

    ``proc_root`` and ``sys_root`` are the procfs and sysfs to read;
    ``os_release`` the os-release files tried in order (``man 5 os-release``).
    """

    name = "host-inventory"

    def __init__(
        self,
        proc_root: str | os.PathLike[str] = "/proc",
        host: str | None = None,
        *,
        sys_root: str | os.PathLike[str] = "/sys",
        os_release: tuple[str, ...] = ("/etc/os-release", "/usr/lib/os-release"),
    ) -> None:
        self.proc_root = os.fspath(proc_root)
        self.sys_root = os.fspath(sys_root)
        self.os_release = os_release
        self.host = host

    @staticmethod
    def _part(read: Callable[[], object], errors: list[CollectError]) -> object:
        try:
            return read()
        except CollectError as err:
            errors.append(err)
            return None

    def _os(self) -> dict[str, JsonScalar]:
        for path in self.os_release:
            if os.path.exists(path):
                return parse_os_release(_read_bytes(path), path)
        raise CollectError(self.os_release[0], "cannot read: no os-release file")

    def _listing(
        self,
        read: Callable[[str, list[CollectError], list[str]], list[dict[str, JsonScalar]]],
        where: str,
        errors: list[CollectError],
        replaced: list[str],
    ) -> list[dict[str, JsonScalar]]:
        try:
            return read(self.sys_root, errors, replaced)
        except OSError as err:
            raise CollectError(where, f"cannot read: {err.strerror or err}") from err

    def collect(self, ctx: CollectContext) -> list[HostInventory]:
        time_ns = ctx.clock.time_ns()
        errors: list[CollectError] = []
        replaced: list[str] = []
        proc = self.proc_root
        cpuinfo = os.path.join(proc, "cpuinfo")
        osrelease = os.path.join(proc, "sys", "kernel", "osrelease")
        mounts = os.path.join(proc, "self", "mounts")
        block = os.path.join(self.sys_root, "block")
        net = os.path.join(self.sys_root, "class", "net")
        readers: dict[str, Callable[[], object]] = {
            "cpu": lambda: parse_cpuinfo(_read_bytes(cpuinfo), cpuinfo),
            "os": self._os,
            "kernel": lambda: {"release": parse_osrelease(_read_bytes(osrelease), osrelease)},
            "disks": lambda: self._listing(read_disks, block, errors, replaced),
            "nics": lambda: self._listing(read_nics, net, errors, replaced),
            "mounts": lambda: parse_mounts(_read_bytes(mounts), mounts),
        }
        parts: dict[str, object] = {}
        for key, read in readers.items():
            value = self._part(read, errors)
            if value is not None:
                parts[key] = value
        if not parts:
            raise CollectError(proc, f"no part of the inventory could be read; {errors[0]}")
        for err in errors:
            ctx.report(err)
        for key, value in out_of_range_details(replaced):
            ctx.detail(key, value)
        return [
            HostInventory(
                host=self.host or ctx.host,
                time_ns=time_ns,
                document=json.dumps(parts, sort_keys=True, separators=(",", ":")),
                errors=tuple(str(e) for e in errors),
            )
        ]
