from __future__ import annotations

import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from collectbus.errors import DaemonError
from collectbus.pidfile import PidLock, is_locked, read_pid_file, running, wait_released


def test_lock_write_read_release(tmp_path: Path) -> None:
    path = tmp_path / "c.pid"
    lock = PidLock(path, "sqlite:///x.db")
    info = read_pid_file(path)
    assert info is not None
    assert (info.pid, info.host, info.database) == (
        os.getpid(),
        socket.gethostname(),
        "sqlite:///x.db",
    )
    assert is_locked(path)
    assert running(path) == info
    lock.release()
    assert not path.exists()
    assert not is_locked(path)


def test_a_second_lock_is_refused_and_names_the_first(tmp_path: Path) -> None:
    path = tmp_path / "c.pid"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from collectbus.pidfile import PidLock;"
            "PidLock(Path(sys.argv[1]), 'db'); print('locked', flush=True); time.sleep(60)",
            str(path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(DaemonError, match=f"already running \\(pid {holder.pid}"):
            PidLock(path, "db")
        info = running(path)
        assert info is not None
        assert info.pid == holder.pid
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.communicate()
    # Killed: the kernel dropped the lock, so the file is stale and is removed.
    assert wait_released(path, 10)
    assert running(path) is None
    assert not path.exists()


def _contend(
    path: str, barrier: multiprocessing.synchronize.Barrier, results: multiprocessing.Queue[str]
) -> None:
    barrier.wait()
    try:
        PidLock(Path(path), "db")
        results.put(f"won {os.getpid()}")
        barrier.wait()  # hold the lock until everyone has tried
    except DaemonError:
        results.put("lost")
        barrier.wait()


def test_concurrent_starts_have_exactly_one_winner(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    for attempt in range(20):
        path = tmp_path / f"race{attempt}.pid"
        barrier = ctx.Barrier(4)
        results: multiprocessing.Queue[str] = ctx.Queue()
        procs = [ctx.Process(target=_contend, args=(str(path), barrier, results)) for _ in range(4)]
        for p in procs:
            p.start()
        outcomes = [results.get(timeout=30) for _ in procs]
        for p in procs:
            p.join(30)
        winners = [o for o in outcomes if o.startswith("won")]
        assert len(winners) == 1, outcomes
        assert outcomes.count("lost") == 3


def test_a_reused_pid_is_not_taken_for_the_daemon(tmp_path: Path) -> None:
    """A PID file naming a live, unrelated process (PID reuse) is stale: no lock is held."""
    path = tmp_path / "c.pid"
    path.write_text(
        json.dumps({"pid": os.getppid(), "host": socket.gethostname(), "user": "u", "started": 1})
    )
    assert running(path) is None
    assert not path.exists()


def test_a_file_of_another_host_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "c.pid"
    path.write_text(json.dumps({"pid": 1, "host": "elsewhere.example", "user": "u", "started": 1}))
    with pytest.raises(DaemonError, match=r"elsewhere\.example"):
        running(path)
    assert path.exists()


def test_unreadable_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "c.pid"
    path.write_text("not json")
    with pytest.raises(DaemonError, match="unreadable PID file"):
        read_pid_file(path)


def test_pid_file_in_a_missing_folder_creates_the_folder(tmp_path: Path) -> None:
    lock = PidLock(tmp_path / "no" / "such" / "c.pid", "db")
    try:
        assert (tmp_path / "no" / "such" / "c.pid").exists()
    finally:
        lock.release()


def test_pid_file_whose_folder_cannot_be_made_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(DaemonError, match="cannot create the folder of the pid file"):
        PidLock(tmp_path / "file" / "c.pid", "db")
