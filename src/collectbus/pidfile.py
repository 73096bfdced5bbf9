"""The daemon's PID file, locked for as long as the daemon lives.

The file is JSON (PID, host, user, start time, database) so that ``status``
can say who runs what. Whether a daemon *is* running is not read from the PID,
which the kernel may have given to another process since, but from the lock:
the daemon holds an exclusive ``flock`` on the file from start to exit, and the
kernel drops it when the process dies, however it dies. So:

- two daemons starting at once cannot both win: the second one's ``flock``
  fails at once and it reports the first;
- a PID file left by a killed daemon is unlocked, hence stale, and a PID that
  was reused by an unrelated process is never signalled;
- ``stop`` waits for the lock to be released, which is the daemon's exit.

The file names its host because a folder may be shared between hosts; a file
written on another host is left alone.

Where the files are when ``daemon.pid_file`` and ``daemon.log_file`` are not
set (:func:`default_pid_file`, :func:`default_log_file`): one place per user,
whatever the current folder, so that ``daemon status`` finds the daemon from
anywhere: ``$XDG_STATE_HOME/collectbus/`` (``~/.local/state/collectbus/``)
for a user; for root without ``XDG_STATE_HOME``, ``/run/collectbus/collectbus.pid``
and ``/var/lib/collectbus/collectbus.log``. The folders are created when the
daemon starts.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import json
import logging
import os
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from collectbus.errors import DaemonError

log = logging.getLogger("collectbus.daemon")

PID_NAME = "collectbus.pid"
LOG_NAME = "collectbus.log"


def _state_dir(env: Mapping[str, str]) -> Path | None:
    """``$XDG_STATE_HOME/collectbus``; for root only when ``XDG_STATE_HOME`` is set."""
    xdg = env.get("XDG_STATE_HOME")
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "collectbus"
    if os.geteuid() == 0:
        return None
    return Path.home() / ".local" / "state" / "collectbus"


def default_pid_file(env: Mapping[str, str] | None = None) -> str:
    """The PID file when ``daemon.pid_file`` is not set: per user, not per folder."""
    state = _state_dir(os.environ if env is None else env)
    return str((state or Path("/run/collectbus")) / PID_NAME)


def default_log_file(env: Mapping[str, str] | None = None) -> str:
    """The daemon's log when ``daemon.log_file`` is not set: beside the PID file for a user."""
    state = _state_dir(os.environ if env is None else env)
    return str((state or Path("/var/lib/collectbus")) / LOG_NAME)


def make_parent(path: Path, what: str) -> None:
    """Create the folder of ``path`` (a default one may not exist yet)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DaemonError(
            f"{path.parent}: cannot create the folder of the {what}: {err.strerror}",
            hint=f"set daemon.{what.replace(' ', '_')} to a writable path",
        ) from err


@dataclass(frozen=True, slots=True)
class PidInfo:
    """What a PID file says."""

    pid: int
    host: str
    user: str
    started: float
    database: str

    @property
    def local(self) -> bool:
        return self.host == socket.gethostname()


def _parse(path: Path, text: str) -> PidInfo | None:
    if not text.strip():
        return None  # being written by a daemon that is starting
    try:
        data = json.loads(text)
        return PidInfo(
            pid=int(data["pid"]),
            host=str(data["host"]),
            user=str(data["user"]),
            started=float(data["started"]),
            database=str(data.get("database", "")),
        )
    except (ValueError, KeyError, TypeError) as err:
        raise DaemonError(
            f"{path}: unreadable PID file ({err})", hint=f"remove {path} if no daemon is running"
        ) from err


def read_pid_file(path: Path) -> PidInfo | None:
    """The PID file's content, or None when there is none (or it is still empty)."""
    try:
        return _parse(path, path.read_text())
    except FileNotFoundError:
        return None
    except OSError as err:
        raise DaemonError(f"{path}: cannot read the PID file: {err.strerror}") from err


def is_locked(path: Path) -> bool:
    """True when a live process holds the daemon lock on ``path``."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    except OSError as err:
        raise DaemonError(f"{path}: cannot open the PID file: {err.strerror}") from err
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops the shared lock, if we got it
    return False


def running(path: Path) -> PidInfo | None:
    """The daemon that holds ``path``, or None. Removes a stale file."""
    info = read_pid_file(path)
    if info is not None and not info.local:
        raise DaemonError(
            f"{path}: belongs to a daemon on host {info.host} (pid {info.pid})",
            hint="run this command on that host, or use another daemon.pid_file",
        )
    if is_locked(path):
        if info is None:  # locked and still empty: it is starting; wait for its content
            for _ in range(100):
                time.sleep(0.01)
                info = read_pid_file(path)
                if info is not None:
                    break
        return info
    if info is not None:
        remove_stale(path, info)
    return None


def remove_stale(path: Path, info: PidInfo) -> None:
    """Remove an unlocked PID file, unless a daemon took it over meanwhile."""
    with contextlib.suppress(FileNotFoundError):
        if not is_locked(path) and read_pid_file(path) == info:
            path.unlink()
            log.warning("removed stale PID file %s (pid %d holds no lock)", path, info.pid)


class PidLock:
    """The running daemon's hold on its PID file; release it with :meth:`release`."""

    def __init__(self, path: Path, database: str) -> None:
        self.path = path
        make_parent(path, "pid file")
        try:
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as err:
            raise DaemonError(
                f"{path}: cannot create the PID file: {err.strerror}",
                hint="set daemon.pid_file to a writable path",
            ) from err
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            holder = read_pid_file(path)
            who = f"pid {holder.pid}, started by {holder.user}" if holder else "starting"
            raise DaemonError(
                f"already running ({who})", hint="collectbus daemon stop, then start again"
            ) from None
        self.info = PidInfo(
            pid=os.getpid(),
            host=socket.gethostname(),
            user=getpass.getuser(),
            started=time.time(),
            database=database,
        )
        payload = json.dumps(
            {
                "pid": self.info.pid,
                "host": self.info.host,
                "user": self.info.user,
                "started": self.info.started,
                "database": database,
            }
        )
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, (payload + "\n").encode(), 0)
        os.fsync(self._fd)

    def release(self) -> None:
        """Remove the file and drop the lock (in that order, so no one removes a successor's)."""
        with contextlib.suppress(FileNotFoundError):
            if os.stat(self.path).st_ino == os.fstat(self._fd).st_ino:
                self.path.unlink()
        os.close(self._fd)


def wait_released(path: Path, timeout_s: float) -> bool:
    """Wait until no process holds the lock on ``path``; False on timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not is_locked(path):
            return True
        time.sleep(0.05)
    return not is_locked(path)
