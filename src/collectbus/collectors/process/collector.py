"""The process collector: the top N processes by CPU % and by resident memory.

One :class:`~collectbus.records.ProcessSample` per collection. Its cost is
bounded: every process costs one read of ``/proc/<pid>/stat`` (its name, CPU
ticks, threads, start time and RSS); only the processes chosen, at most ``2 × top``
(the top by CPU and the top by RSS), have ``statm`` (their exact RSS),
``status`` (the real uid), ``io`` (storage bytes) and ``cmdline`` read. Names of uids are cached.

**CPU %** is top's: the CPU ticks (user + system) a process used since the
previous collection, over the wall time between the two collections (the bus
clock's monotonic time), × 100; one CPU kept busy is 100. A process that
started since the previous collection is measured from its start (its
``starttime`` against ``/proc/uptime``). At the first collection there is no
previous one: every CPU % is None and the top by CPU is empty; a process
that was not seen at the previous collection and did not start since (a
listing it escaped) is None too. A pid used again by a new process (a
different start time) is a new process.

**Exits are not errors.** A process that exits between the listing of
``/proc`` and the reading of its ``stat`` (gone, or an empty ``stat`` while
it is reaped) is counted in ``vanished`` (and the collection's details), not
reported. For a chosen process, a ``status``,
``cmdline`` or ``io`` that cannot be read (it exited since; ``io`` of another
user's process, or of any process the kernel keeps from us, as pid 1 of a
container; a kernel without I/O accounting) leaves its fields None. A ``stat`` that cannot be
parsed is reported as one problem naming the file (the collection is then
``partial``), and the other processes are still collected.

Clock ticks per second and the page size are this machine's (``SC_CLK_TCK``,
``SC_PAGE_SIZE``), also when ``proc_root`` is a recorded tree.
"""

from __future__ import annotations

import contextlib
import errno
import heapq
import os
import pwd
from collections.abc import Callable

from collectbus.collectors.base import CollectContext
from collectbus.collectors.process.parse import (
    ProcStat,
    parse_cmdline,
    parse_io,
    parse_stat,
    parse_statm,
    parse_uid,
)
from collectbus.errors import CollectError, ParseError
from collectbus.records import ProcessRow, ProcessSample

__all__ = ["DEFAULT_TOP", "ProcessCollector"]

#: Processes kept in each top (by CPU, by RSS) unless told otherwise.
DEFAULT_TOP = 10

# A stat line is under 1 KiB (a 64-byte name escaped, 52 numbers); status is
# a few KiB; a command line is cut at this length.
_STAT_BYTES = 4096
_STATUS_BYTES = 16384
_IO_BYTES = 1024
_CMDLINE_BYTES = 4096

_OPEN_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK

# Errors of a process that exited: its directory is gone (ENOENT), or its
# files answer ESRCH once the task is reaped.
_GONE = frozenset({errno.ENOENT, errno.ESRCH})


class _Gone(Exception):
    """The process exited while it was read."""


def _read(path: str, size: int) -> bytes:
    """One read of a /proc file; _Gone when the process has exited."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as err:
        if err.errno in _GONE:
            raise _Gone from None
        raise
    try:
        return os.read(fd, size)
    except OSError as err:
        if err.errno in _GONE:
            raise _Gone from None
        raise
    finally:
        os.close(fd)


class ProcessCollector:
    """The top ``top`` processes by CPU % and by RSS under ``proc_root``.

    ``host`` overrides the host name the bus gives in the context.
    """

    name = "processes"

    def __init__(
        self,
        proc_root: str | os.PathLike[str] = "/proc",
        host: str | None = None,
        *,
        top: int = DEFAULT_TOP,
    ) -> None:
        if top < 1:
            raise ValueError(f"processes: top must be at least 1, got {top}")
        self.proc_root = os.fspath(proc_root)
        self.host = host
        self.top = top
        self._hz = os.sysconf("SC_CLK_TCK")
        self._page = os.sysconf("SC_PAGE_SIZE")
        self._uptime_path = os.path.join(self.proc_root, "uptime")
        #: pid -> (start ticks, CPU ticks) at the previous collection.
        self._previous: dict[int, tuple[int, int]] = {}
        self._previous_ns: int | None = None
        self._users: dict[int, str] = {}
        #: Where a test can step in between the listing and the reading.
        self.after_listing: Callable[[list[str]], None] | None = None

    def _pids(self) -> list[str]:
        try:
            with os.scandir(self.proc_root) as entries:
                return [e.name for e in entries if e.name.isdigit()]
        except OSError as err:
            raise CollectError(self.proc_root, f"cannot list: {err.strerror or err}") from err

    def _uptime_s(self) -> float | None:
        """Seconds since boot (``/proc/uptime``), or None when unreadable."""
        try:
            return float(_read(self._uptime_path, 256).split()[0])
        except (OSError, _Gone, ValueError, IndexError):
            return None

    def _user(self, uid: int) -> str:
        name = self._users.get(uid)
        if name is None:
            try:
                name = pwd.getpwuid(uid).pw_name
            except KeyError:
                name = str(uid)
            self._users[uid] = name
        return name

    def collect(self, ctx: CollectContext) -> list[ProcessSample]:
        """List the processes, read each one's stat, pick the tops; one sample."""
        time_ns = ctx.clock.time_ns()
        now_ns = ctx.clock.monotonic_ns()
        pids = self._pids()
        if self.after_listing is not None:
            self.after_listing(pids)
        uptime = self._uptime_s()
        root = self.proc_root
        stats: list[ProcStat] = []
        vanished = 0
        errors: list[str] = []
        for pid in pids:
            path = f"{root}/{pid}/stat"
            try:
                data = _read(path, _STAT_BYTES)
                if not data:  # a task being reaped: nothing left to read
                    raise _Gone
                stats.append(parse_stat(data, path))
            except _Gone:
                vanished += 1
            except ParseError as err:
                ctx.report(err)
                errors.append(str(err))
            except OSError as err:
                problem = CollectError(path, f"cannot read: {err.strerror or err}")
                ctx.report(problem)
                errors.append(str(problem))
        cpu = self._cpu_percents(stats, now_ns, uptime)
        by_cpu = heapq.nlargest(
            self.top, (s for s in stats if cpu.get(s.pid) is not None), key=lambda s: cpu[s.pid]
        )
        by_mem = heapq.nlargest(self.top, stats, key=lambda s: s.rss_pages)
        cpu_rank = {s.pid: n for n, s in enumerate(by_cpu, 1)}
        mem_rank = {s.pid: n for n, s in enumerate(by_mem, 1)}
        chosen = list({s.pid: s for s in (*by_cpu, *by_mem)}.values())
        rows = [self._row(s, cpu.get(s.pid), cpu_rank, mem_rank) for s in chosen]
        if vanished:
            ctx.detail("vanished", str(vanished))
        return [
            ProcessSample(
                host=self.host or ctx.host,
                time_ns=time_ns,
                processes=tuple(rows),
                seen=len(pids),
                vanished=vanished,
                errors=tuple(errors),
            )
        ]

    def _cpu_percents(
        self, stats: list[ProcStat], now_ns: int, uptime: float | None
    ) -> dict[int, float]:
        """CPU % per pid since the previous collection (see the module); keeps this one's."""
        previous, previous_ns = self._previous, self._previous_ns
        self._previous = {s.pid: (s.start_ticks, s.cpu_ticks) for s in stats}
        self._previous_ns = now_ns
        if previous_ns is None or now_ns <= previous_ns:
            return {}
        hz = self._hz
        elapsed = (now_ns - previous_ns) / 1e9
        out: dict[int, float] = {}
        for s in stats:
            before = previous.get(s.pid)
            if before is not None and before[0] == s.start_ticks:
                out[s.pid] = max(s.cpu_ticks - before[1], 0) / hz / elapsed * 100.0
            elif uptime is not None:
                lived = uptime - s.start_ticks / hz
                if 0 < lived <= elapsed:  # started since the previous collection
                    out[s.pid] = s.cpu_ticks / hz / lived * 100.0
        return out

    def _row(
        self,
        stat: ProcStat,
        cpu_percent: float | None,
        cpu_rank: dict[int, int],
        mem_rank: dict[int, int],
    ) -> ProcessRow:
        """The row of a chosen process, with ``status``, ``io`` and ``cmdline`` read."""
        base = f"{self.proc_root}/{stat.pid}/"

        def read(name: str, size: int) -> bytes | None:
            try:
                return _read(base + name, size)
            except (_Gone, OSError):  # exited since, or not ours to read: None
                return None

        status = read("status", _STATUS_BYTES)
        user = None
        if status is not None:
            with contextlib.suppress(ParseError):  # no Uid line: no user
                user = self._user(parse_uid(status, base + "status"))
        command = parse_cmdline(read("cmdline", _CMDLINE_BYTES) or b"", stat.name)
        rss_pages = stat.rss_pages
        statm = read("statm", _IO_BYTES)
        if statm is not None:
            with contextlib.suppress(ParseError):
                rss_pages = parse_statm(statm, base + "statm")
        data = read("io", _IO_BYTES)
        io = None
        if data is not None:
            with contextlib.suppress(ParseError):
                io = parse_io(data, base + "io")
        return ProcessRow(
            pid=stat.pid,
            name=stat.name,
            command=command,
            user=user,
            cpu_percent=cpu_percent,
            rss_bytes=rss_pages * self._page,
            read_bytes=None if io is None else io[0],
            write_bytes=None if io is None else io[1],
            threads=stat.threads,
            cpu_rank=cpu_rank.get(stat.pid),
            mem_rank=mem_rank.get(stat.pid),
        )
