"""Remote hosts over SSH: one persistent session per host, /proc bytes framed by markers.

Each remote host gets ONE ``ssh`` process for the whole recording, started
with ``BatchMode=yes`` (never a password prompt) and a ControlMaster socket in
a private folder (``ControlPersist``), so that a reconnect reuses the
authenticated connection when there still is one. The remote command is a
small loop (:mod:`collectbus.recording.remote`): it reads one request line (a
sequence number) on stdin and answers with the six /proc files of a host
sample, each preceded by a marker line ``<token> <file>``, then
``<token> done <seq>``. The token is random per session, so no /proc content
can be mistaken for a marker.

The bytes go through the same pure parsers as the local collector
(:mod:`collectbus.collectors.host.parse`). A file that is missing or malformed
is named in the sample's ``errors``; the other files still count. Disks go
through the recorder's device filter (by name: a partition is kept, as the
recorder keeps this host's); the sample's extras (the machine's name, the
meminfo and vmstat keys no column knows) are read from the same bytes.

Failures are per host: a session that does not answer within the deadline,
ends, or cannot be started is killed, the collection raises a
:class:`~collectbus.errors.CollectError` whose one-line message names the
host, and the next attempt waits: the first retry is at the next round, then
the wait doubles from ``backoff_initial`` up to ``backoff_max``. Rounds in
between fail at once with a message saying when the next attempt is.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import selectors
import signal
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from collectbus.clock import NS_PER_S, Clock, SystemClock
from collectbus.collectors.base import CollectContext
from collectbus.collectors.host.collector import SOURCES
from collectbus.collectors.host.filters import DeviceFilter, FilterConfig
from collectbus.collectors.host.parse import (
    parse_diskstats,
    parse_loadavg,
    parse_meminfo_detail,
    parse_net_dev,
    parse_stat,
    parse_vmstat_detail,
)
from collectbus.errors import CollectError
from collectbus.recording.extras import ExtrasTable, SampleExtras, meminfo_extras, vmstat_extras
from collectbus.recording.remote import HOSTNAME_FILE, remote_command, split_frames
from collectbus.records import HostSample

__all__ = [
    "SshHostCollector",
    "SshOptions",
    "SshSession",
    "disk_filter_config",
    "frame_extras",
    "sample_from_frames",
]

T = TypeVar("T")

_STDERR_KEEP = 4096
_CHUNK = 65536
# How long close() waits for a remote loop to end after "q" before killing it.
_CLOSE_WAIT_S = 2.0


def disk_filter_config(include: Sequence[str] = (), exclude: Sequence[str] = ()) -> FilterConfig:
    """What a recording keeps: every disk, partitions and loop devices included,
    as MLCommons storage records them, unless the patterns say otherwise."""
    return FilterConfig(
        disk_include=tuple(include), disk_exclude=tuple(exclude), disk_partitions=True
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class SshOptions:
    """How to reach remote hosts.

    ``control_dir`` holds the ControlMaster sockets (``%C``: a hash of host,
    port and user, short enough for a socket path). ``options`` are extra
    ``-o`` settings (``Port=2222``), ``config_file`` an ``ssh -F`` file.
    """

    control_dir: str
    command: str = "ssh"
    config_file: str | None = None
    options: tuple[str, ...] = ()
    proc_root: str = "/proc"
    control_persist_s: int = 10
    #: Let the remote loop be python3 when the host has it (no fork per sample).
    python: bool = True


def ssh_argv(opts: SshOptions, host: str, *, connect_timeout_s: float) -> list[str]:
    """The ``ssh`` command line up to and including the host name."""
    argv = [opts.command]
    if opts.config_file:
        argv += ["-F", opts.config_file]
    settings = (
        "BatchMode=yes",
        "ControlMaster=auto",
        f"ControlPath={opts.control_dir}/%C",
        f"ControlPersist={opts.control_persist_s}",
        f"ConnectTimeout={max(1, int(connect_timeout_s))}",
        "ServerAliveInterval=5",
        "ServerAliveCountMax=2",
        *opts.options,
    )
    for setting in settings:
        argv += ["-o", setting]
    argv.append(host)
    return argv


class SshSession:
    """One ``ssh`` process running :func:`remote_script` on one host."""

    def __init__(self, host: str, opts: SshOptions, *, clock: Clock | None = None) -> None:
        self.host = host
        self.opts = opts
        self.clock = clock or SystemClock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._token = ""
        self._seq = 0
        self._buf = bytearray()
        self._stderr = bytearray()
        self._sel: selectors.BaseSelector | None = None

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The local ``ssh`` process, while there is one."""
        return self._proc.pid if self._proc is not None else None

    def open(self, deadline_ns: int) -> None:
        """Start ssh and wait for the remote loop to say it is ready."""
        self.kill()
        self._token = secrets.token_hex(8)
        timeout_s = max(0.0, (deadline_ns - self.clock.monotonic_ns()) / NS_PER_S)
        argv = ssh_argv(self.opts, self.host, connect_timeout_s=timeout_s)
        argv.append(remote_command(self._token, self.opts.proc_root, python=self.opts.python))
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as err:
            raise CollectError(
                self.host, f"cannot run {self.opts.command}: {err.strerror or err}"
            ) from err
        assert proc.stdout is not None
        assert proc.stderr is not None
        os.set_blocking(proc.stdout.fileno(), False)
        os.set_blocking(proc.stderr.fileno(), False)
        self._proc = proc
        self._buf.clear()
        self._stderr.clear()
        self._sel = selectors.DefaultSelector()
        self._sel.register(proc.stdout, selectors.EVENT_READ, "out")
        self._sel.register(proc.stderr, selectors.EVENT_READ, "err")
        self._read_until(f"{self._token} ready\n".encode(), deadline_ns, "connecting")

    def sample(self, deadline_ns: int) -> dict[str, bytes]:
        """Ask for one sample; the six files' bytes by name."""
        proc = self._proc
        if proc is None or proc.stdin is None:
            raise CollectError(self.host, "no session")
        self._seq += 1
        try:
            proc.stdin.write(f"{self._seq}\n".encode())
            proc.stdin.flush()
        except (BrokenPipeError, OSError) as err:
            raise CollectError(self.host, f"session closed: {self._why_ended()}") from err
        end = f"\n{self._token} done {self._seq}\n".encode()
        data = self._read_until(end, deadline_ns, "waiting for a sample")
        return split_frames(data, self._token, f"{self.host}: ssh session")

    def _read_until(self, marker: bytes, deadline_ns: int, what: str) -> bytes:
        """Bytes before ``marker`` (which is consumed); CollectError at EOF or the deadline."""
        assert self._sel is not None
        while True:
            at = self._buf.find(marker)
            if at >= 0:
                data = bytes(self._buf[:at])
                del self._buf[: at + len(marker)]
                return data
            left_s = (deadline_ns - self.clock.monotonic_ns()) / NS_PER_S
            if left_s <= 0:
                raise CollectError(self.host, f"no answer in time while {what}")
            for key, _ in self._sel.select(timeout=left_s):
                chunk = os.read(key.fd, _CHUNK)
                if key.data == "err":
                    if chunk:
                        self._stderr += chunk
                        del self._stderr[:-_STDERR_KEEP]
                    else:
                        self._sel.unregister(key.fileobj)
                    continue
                if not chunk:
                    raise CollectError(
                        self.host, f"session ended while {what}: {self._why_ended()}"
                    )
                self._buf += chunk

    def _why_ended(self) -> str:
        """The last line ssh printed on stderr, or its exit status."""
        if self._sel is not None and self._proc is not None and self._proc.stderr is not None:
            with contextlib.suppress(OSError):
                self._stderr += os.read(self._proc.stderr.fileno(), _CHUNK)
        lines = [ln for ln in self._stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
        if lines:
            return lines[-1].strip()
        code = self._proc.poll() if self._proc is not None else None
        return "no message" if code is None else f"ssh exited with status {code}"

    def kill(self) -> None:
        """End the local ssh process at once (its ControlMaster, if any, stays)."""
        proc, self._proc = self._proc, None
        if self._sel is not None:
            self._sel.close()
            self._sel = None
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()

    def close(self) -> None:
        """Let the remote loop end ("q"), then stop the ControlMaster of this host."""
        proc = self._proc
        if proc is not None and proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.write(b"q\n")
                proc.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(_CLOSE_WAIT_S)
        self.kill()
        argv = ssh_argv(self.opts, self.host, connect_timeout_s=1)
        argv[-1:-1] = ["-O", "exit"]
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=5,
                check=False,
            )


class SshHostCollector:
    """A collector for one remote host, read through its :class:`SshSession`.

    ``timeout_s`` bounds each round (connecting included). A failed round
    kills the session; see the module docstring for the retries. Each
    sample's extras wait in ``extras`` under its time.
    """

    method = "ssh"

    def __init__(
        self,
        host: str,
        opts: SshOptions,
        *,
        timeout_s: float,
        backoff_initial_s: float = 1.0,
        backoff_max_s: float = 60.0,
        disk_filter: DeviceFilter | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.name = f"host:{host}"
        self.host = host
        self.extras = ExtrasTable()
        self.disk_filter = disk_filter or DeviceFilter(disk_filter_config())
        self.clock = clock or SystemClock()
        self.session = SshSession(host, opts, clock=self.clock)
        self.timeout_ns = int(timeout_s * NS_PER_S)
        self.backoff_initial_ns = int(backoff_initial_s * NS_PER_S)
        self.backoff_max_ns = int(backoff_max_s * NS_PER_S)
        self.failures = 0
        self.reconnects = 0
        self._opened = False
        self._retry_at_ns = 0
        self._last_error = ""

    def collect(self, ctx: CollectContext) -> list[HostSample]:
        now = self.clock.monotonic_ns()
        deadline = now + self.timeout_ns
        if ctx.deadline_ns is not None:
            deadline = min(deadline, ctx.deadline_ns)
        if not self.session.alive:
            if now < self._retry_at_ns:
                wait_s = (self._retry_at_ns - now) / NS_PER_S
                raise CollectError(
                    self.host,
                    f"not connected, next attempt in {wait_s:.1f} s; last error: {self._last_error}",
                )
            try:
                if self._opened:
                    self.reconnects += 1
                self._opened = True
                self.session.open(deadline)
            except CollectError as err:
                self._failed(err)
                raise
        sent_ns = self.clock.time_ns()
        try:
            frames = self.session.sample(deadline)
        except CollectError as err:
            self._failed(err)
            raise
        time_ns = (sent_ns + self.clock.time_ns()) // 2
        self.failures = 0
        sample = sample_from_frames(
            self.host, frames, time_ns, ctx, self.session.opts.proc_root, self.disk_filter
        )
        self.extras.put(time_ns, frame_extras(frames))
        return [sample]

    def _failed(self, err: CollectError) -> None:
        self.session.kill()
        self.failures += 1
        self._last_error = str(err).removeprefix(f"{self.host}: ")
        if self.failures > 1:
            delay = self.backoff_initial_ns << min(self.failures - 2, 32)
            self._retry_at_ns = self.clock.monotonic_ns() + min(delay, self.backoff_max_ns)

    def close(self) -> None:
        self.session.close()


def frame_extras(frames: Mapping[str, bytes]) -> SampleExtras:
    """The machine's name and the meminfo and vmstat keys no column knows, of one answer."""
    name = frames.get(HOSTNAME_FILE, b"").strip().decode("utf-8", "backslashreplace")
    return SampleExtras(
        hostname=name or None,
        meminfo=meminfo_extras(frames.get("meminfo", b"")),
        vmstat=vmstat_extras(frames.get("vmstat", b"")),
    )


def sample_from_frames(
    host: str,
    frames: Mapping[str, bytes],
    time_ns: int,
    ctx: CollectContext,
    proc_root: str,
    disk_filter: DeviceFilter | None = None,
) -> HostSample:
    """Parse one answer into a HostSample; a bad file is reported and left empty.

    ``disk_filter`` keeps the disks it names (by name; every one without it).
    """
    errors: list[str] = []

    def parsed(source: str, parse: Callable[[bytes, str], T]) -> T | None:
        where = f"{host}:{proc_root}/{source}"
        data = frames.get(source, b"")
        try:
            if not data:
                raise CollectError(where, "empty or unreadable")
            return parse(data, where)
        except CollectError as err:
            ctx.report(err)
            errors.append(str(err))
            return None

    stat = parsed("stat", parse_stat)
    mem = parsed("meminfo", parse_meminfo_detail)
    vm = parsed("vmstat", parse_vmstat_detail)
    disk = parsed("diskstats", parse_diskstats)
    net = parsed("net/dev", parse_net_dev)
    load = parsed("loadavg", parse_loadavg)
    if len(errors) == len(SOURCES):
        raise CollectError(host, f"none of the {len(SOURCES)} files could be read; {errors[0]}")
    if disk and disk_filter is not None:
        kept = [i for i, d in enumerate(disk) if disk_filter.keep_disk(d.device, d.major, d.minor)]
        disk = tuple(disk[i] for i in disk_filter.cap("disk", kept))
    return HostSample(
        host=host,
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
