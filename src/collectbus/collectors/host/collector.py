"""The Linux host collector: one :class:`~collectbus.records.HostSample` per collection.

It reads six files under a procfs root: ``stat``, ``meminfo``, ``vmstat``,
``diskstats``, ``net/dev`` and ``loadavg``. The files stay open between
collections and are read with ``os.pread`` from offset 0, which makes the
kernel generate them afresh, then at increasing offsets until the end of the
file (see :meth:`ProcFile.read` for when a short read is the end). The read
buffer grows to the size of the file. Parsing goes through the cached layouts of
:mod:`.layouts` and :mod:`.keyvalues`, which give the same records as the pure parsers of
:mod:`.parse`.

A file that cannot be read or parsed is reported to the context, named in the
sample's ``errors``, and left empty in the sample; the other files are still
collected. Only when every file fails does ``collect`` raise.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from contextlib import suppress
from functools import partial
from typing import TypeVar

from collectbus.collectors.base import CollectContext
from collectbus.collectors.host.keyvalues import MeminfoParser, VmstatParser
from collectbus.collectors.host.layouts import DiskstatsParser, NetDevParser, StatParser
from collectbus.collectors.host.parse import parse_loadavg
from collectbus.errors import CollectError
from collectbus.records import HostSample

__all__ = ["SOURCES", "HostCollector", "ProcFile"]

T = TypeVar("T")

#: The files a sample is read from, relative to the procfs root.
SOURCES = ("stat", "meminfo", "vmstat", "diskstats", "net/dev", "loadavg")

# A descriptor that went stale is opened again once: EBADF (closed under us),
# ESTALE and ENODEV (procfs or the mount behind it went away and came back).
_REOPEN_ERRNOS = frozenset({errno.EBADF, errno.ESTALE, errno.ENODEV})

# One page: enough for loadavg and for stat, meminfo and net/dev of a small
# host. A larger buffer than the file costs time on every read (a 128 KiB one
# makes loadavg 10x slower), so a buffer grows only to the size of the file.
_FIRST_BUFFER = 4096

# When a short read is the end of the file. The six files are seq_files
# (fs/seq_file.c: seq_read_iter, seq_read before Linux 5.10). A read at the
# offset where the previous one stopped returns the records that fit in the
# seq_file's buffer, which is at least one page (4 KiB or more), and stops
# early either at the end or because the next record did not fit. So a short
# read is NOT the end in general: with 81 interfaces, net/dev comes as 4,013
# bytes, then more. But a read cut short for lack of room returned more than
# a page less the next record. Given an upper bound on a file's records (its
# lines), a read shorter than asked and no longer than a page less that bound
# is the end; after any other read comes a pread at the next offset, until
# one of them is short enough, or returns 0 bytes. On a regular file (a
# fixture tree) a short read is the end anyway.
_SMALLEST_PAGE = 4096

# The longest line a file prints, about twice over: net/dev and diskstats
# print a name and at most 20 counters of at most 20 digits (under 512 bytes);
# vmstat prints "name value" (under 64). stat, meminfo and loadavg are each one
# record (single_open), printed whole, so any short read of them is the end;
# the default bound stays right for them too, only slower beyond 3 KiB.
_LONGEST_RECORD = 1024
_LONGEST_RECORD_OF = {"vmstat": 128}


class ProcFile:
    """One /proc file, kept open and re-read from offset 0 with ``os.pread``.

    ``longest_record`` bounds the length of the file's records (lines); it
    decides which short reads end the file (see ``_SMALLEST_PAGE``).
    """

    __slots__ = ("_fd", "_last_read_max", "_size", "path")

    def __init__(self, path: str, *, longest_record: int = _LONGEST_RECORD) -> None:
        self.path = path
        self._fd = -1
        self._size = _FIRST_BUFFER
        self._last_read_max = _SMALLEST_PAGE - longest_record

    def read(self) -> bytes:
        """The whole file as the kernel generates it now; CollectError if unreadable."""
        try:
            fd = self._fd if self._fd >= 0 else self._open()
            size = self._size
            try:
                data = os.pread(fd, size, 0)
            except OSError as err:
                if err.errno not in _REOPEN_ERRNOS:
                    raise
                self._fd = -1
                if err.errno != errno.EBADF:
                    # Closed, not just dropped: with EBADF the number may
                    # already belong to another file of this process.
                    with suppress(OSError):
                        os.close(fd)
                fd = self._open()
                data = os.pread(fd, size, 0)
            n = len(data)
            if n < size and n <= self._last_read_max:
                return data  # the usual case: one read, and it is the whole file
            return self._read_on(fd, data)
        except OSError as err:
            raise CollectError(self.path, f"cannot read: {err.strerror or err}") from err

    def _read_on(self, fd: int, first: bytes) -> bytes:
        """Read on from the end of ``first`` to the end of the file; grow the buffer."""
        size = self._size
        last_read_max = self._last_read_max
        chunks = [first]
        total = n = len(first)
        while n and (n >= size or n > last_read_max):
            chunk = os.pread(fd, size, total)
            n = len(chunk)
            if n:
                total += n
                chunks.append(chunk)
        if size <= total:
            # Next time ask for more than the whole file: one read then gets
            # a single_open file (stat of a many-CPU host) whole, and a file
            # of records in as few reads as its seq_file buffer allows.
            while size <= total:
                size *= 2
            self._size = size
        return first if len(chunks) == 1 else b"".join(chunks)

    def fileno(self) -> int:
        """The open descriptor, or -1 before the first read and after close()."""
        return self._fd

    def close(self) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)

    def _open(self) -> int:
        self._fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        return self._fd


class HostCollector:
    """Collects stat, meminfo, vmstat, diskstats, net/dev and loadavg of one host.

    ``proc_root`` is the procfs to read (the config key ``proc_root``; a
    fixture tree in tests, ``/host/proc`` in a container). ``host`` overrides
    the host name the bus gives in the context.
    """

    name = "host"

    def __init__(
        self, proc_root: str | os.PathLike[str] = "/proc", host: str | None = None
    ) -> None:
        self.proc_root = os.fspath(proc_root)
        self.host = host
        paths = [os.path.join(self.proc_root, source) for source in SOURCES]
        self._files = [
            ProcFile(path, longest_record=_LONGEST_RECORD_OF.get(source, _LONGEST_RECORD))
            for source, path in zip(SOURCES, paths, strict=True)
        ]
        self._stat = StatParser(paths[0])
        self._meminfo = MeminfoParser(paths[1])
        self._vmstat = VmstatParser(paths[2])
        self._diskstats = DiskstatsParser(paths[3])
        self._net_dev = NetDevParser(paths[4])
        self._loadavg = partial(parse_loadavg, source=paths[5])
        self._unknown_keys: dict[str, tuple[str, ...]] = {}

    @property
    def unknown_keys(self) -> dict[str, tuple[str, ...]]:
        """Keys of meminfo and vmstat, at the last collection, that no column knows."""
        return dict(self._unknown_keys)

    @property
    def full_parses(self) -> dict[str, int]:
        """Reads per file that took the pure parser rather than a learnt layout.

        One per file after the first collection; each later one is a layout
        change (hot-plug) or a file the fast path cannot describe.
        """
        return {
            "stat": self._stat.full_parses,
            "meminfo": self._meminfo.full_parses,
            "vmstat": self._vmstat.full_parses,
            "diskstats": self._diskstats.full_parses,
            "net/dev": self._net_dev.full_parses,
        }

    def collect(self, ctx: CollectContext) -> list[HostSample]:
        """Read the six files once; return exactly one sample."""
        time_ns = ctx.clock.time_ns()
        errors: list[str] = []
        stat_file, mem_file, vm_file, disk_file, net_file, load_file = self._files
        stat = _read(stat_file, self._stat.parse, ctx, errors)
        mem = _read(mem_file, self._meminfo.parse, ctx, errors)
        vm = _read(vm_file, self._vmstat.parse, ctx, errors)
        disk = _read(disk_file, self._diskstats.parse, ctx, errors)
        net = _read(net_file, self._net_dev.parse, ctx, errors)
        load = _read(load_file, self._loadavg, ctx, errors)
        if len(errors) == len(SOURCES):
            raise CollectError(
                self.proc_root, f"none of the {len(SOURCES)} files could be read; {errors[0]}"
            )
        if mem is not None:
            self._unknown_keys["meminfo"] = mem.unknown_keys
        if vm is not None:
            self._unknown_keys["vmstat"] = vm.unknown_keys
        return [
            HostSample(
                host=self.host or ctx.host,
                time_ns=time_ns,
                cpu=stat[0] if stat is not None else (),
                stat=stat[1] if stat is not None else None,
                mem=mem.values if mem is not None else None,
                vmstat=vm.values if vm is not None else None,
                disk=disk or (),
                net=net or (),
                load=load,
                errors=tuple(errors),
            )
        ]

    def close(self) -> None:
        """Close the open files; a later collect opens them again."""
        for file in self._files:
            file.close()


def _read(
    file: ProcFile, parse: Callable[[bytes], T], ctx: CollectContext, errors: list[str]
) -> T | None:
    """Read and parse one file; a failure is reported and gives None."""
    try:
        return parse(file.read())
    except CollectError as err:
        ctx.report(err)
        errors.append(str(err))
        return None
