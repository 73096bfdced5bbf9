"""One /proc (or sysfs, cgroupfs) file kept open and re-read with ``os.pread``.

Reads are bounded, whatever sits at the path: a file is opened with
``O_NONBLOCK`` (a FIFO then opens at once instead of waiting for a writer),
and only a regular file is read (``fstat`` after the open: procfs and sysfs
files are regular, of size 0). A FIFO, a socket or a device (``/dev/zero``
would read forever) is refused, as is a file longer than ``max_bytes``
(:data:`MAX_FILE_BYTES`) or one whose read takes longer than ``time_limit_s``
(:data:`READ_TIME_LIMIT_S`). A refusal is a one-line
:class:`~collectbus.errors.CollectError` naming the file; the caller goes on
with the rest of its sample, as for a missing file.
"""

from __future__ import annotations

import errno
import os
import stat
import time
from contextlib import suppress

from collectbus.errors import CollectError

__all__ = ["LONGEST_RECORD", "MAX_FILE_BYTES", "READ_TIME_LIMIT_S", "ProcFile", "read_once"]

#: The most bytes read from one file. /proc/stat of a 1,024-CPU host is about
#: 200 KiB, and net/dev with 10,000 interfaces about 1.5 MiB.
MAX_FILE_BYTES = 8 * 1024 * 1024
#: The longest one read of one file may take, all its preads together.
READ_TIME_LIMIT_S = 2.0

_OPEN_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK

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
LONGEST_RECORD = _LONGEST_RECORD


class ProcFile:
    """One /proc file, kept open and re-read from offset 0 with ``os.pread``.

    ``longest_record`` bounds the length of the file's records (lines); it
    decides which short reads end the file (see ``_SMALLEST_PAGE``).
    ``max_bytes`` and ``time_limit_s`` bound one read (see the module).
    """

    __slots__ = ("_fd", "_last_read_max", "_size", "max_bytes", "path", "time_limit_s")

    def __init__(
        self,
        path: str,
        *,
        longest_record: int = _LONGEST_RECORD,
        max_bytes: int = MAX_FILE_BYTES,
        time_limit_s: float = READ_TIME_LIMIT_S,
    ) -> None:
        self.path = path
        self._fd = -1
        self._size = _FIRST_BUFFER
        self._last_read_max = _SMALLEST_PAGE - longest_record
        self.max_bytes = max_bytes
        self.time_limit_s = time_limit_s

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
        deadline = time.monotonic() + self.time_limit_s
        while n and (n >= size or n > last_read_max):
            if total > self.max_bytes:
                raise CollectError(self.path, f"longer than {self.max_bytes} bytes; not read")
            if time.monotonic() > deadline:
                raise CollectError(
                    self.path, f"reading took longer than {self.time_limit_s:g} s; not read"
                )
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
        fd = os.open(self.path, _OPEN_FLAGS)
        try:
            mode = os.fstat(fd).st_mode
        except OSError:
            os.close(fd)
            raise
        if not stat.S_ISREG(mode):
            os.close(fd)
            raise CollectError(self.path, f"not a regular file ({_kind(mode)}); not read")
        self._fd = fd
        return fd


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISDIR, "a directory"),
    ):
        if test(mode):
            return name
    return f"mode {stat.filemode(mode)}"


def read_once(path: str, *, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """The whole of one file, read as :class:`ProcFile` reads (bounded), then closed.

    CollectError naming the file when it cannot be read or is refused; the
    ``OSError``, if any, is its ``__cause__``.
    """
    file = ProcFile(path, max_bytes=max_bytes)
    try:
        return file.read()
    finally:
        file.close()
