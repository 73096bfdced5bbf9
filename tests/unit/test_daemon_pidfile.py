from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from collectbus.daemon import process_alive, read_pid_file, write_pid_file
from collectbus.errors import DaemonError


def test_write_and_read(tmp_path: Path) -> None:
    path = tmp_path / "c.pid"
    write_pid_file(path, "sqlite:///x.db")
    info = read_pid_file(path)
    assert info is not None
    assert (info.pid, info.host, info.database) == (
        os.getpid(),
        socket.gethostname(),
        "sqlite:///x.db",
    )
    assert info.local


def test_refuses_a_live_daemon(tmp_path: Path) -> None:
    path = tmp_path / "c.pid"
    parent = os.getppid()  # alive, and not us
    path.write_text(
        json.dumps({"pid": parent, "host": socket.gethostname(), "user": "u", "started": 1})
    )
    with pytest.raises(DaemonError, match=f"already running \\(pid {parent}"):
        write_pid_file(path, "db")


def test_replaces_a_stale_file(tmp_path: Path) -> None:
    path = tmp_path / "c.pid"
    dead = int(Path("/proc/sys/kernel/pid_max").read_text()) + 1
    path.write_text(
        json.dumps({"pid": dead, "host": socket.gethostname(), "user": "u", "started": 1})
    )
    write_pid_file(path, "db")
    info = read_pid_file(path)
    assert info is not None
    assert info.pid == os.getpid()


def test_unreadable_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "c.pid"
    path.write_text("not json")
    with pytest.raises(DaemonError, match="unreadable PID file"):
        read_pid_file(path)


def test_process_alive() -> None:
    assert process_alive(os.getpid())
    assert not process_alive(int(Path("/proc/sys/kernel/pid_max").read_text()) + 1)
