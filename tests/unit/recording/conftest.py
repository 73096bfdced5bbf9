"""Fixtures for the record tests: a procfs tree of recorded files, and an ssh stand-in.

The stand-in is a real program: it runs the remote command with this
machine's ``sh``, as sshd runs it with the user's shell, so the remote loop,
its framing and the session handling run for real, without an SSH server.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

PROCFS = Path(__file__).resolve().parents[2] / "data" / "procfs"
FC = PROCFS / "fc-6.18-2cpu"
TREE = (
    ("stat", "stat"),
    ("meminfo", "meminfo"),
    ("vmstat", "vmstat"),
    ("diskstats", "diskstats"),
    ("net/dev", "net_dev"),
    ("loadavg", "loadavg"),
)

FAKE_SSH = """#!/bin/sh
# Stands in for ssh: "-O exit" succeeds; otherwise the last argument (the
# remote command) runs with the local sh. FAKE_SSH_HANG makes it hang.
for a; do last=$a; done
case " $* " in *" -O "*) exit 0;; esac
[ -n "$FAKE_SSH_HANG" ] && exec sleep 600
exec sh -c "$last"
"""


def build_proc_root(root: Path, source: Path = FC) -> Path:
    (root / "net").mkdir(parents=True, exist_ok=True)
    for relative, fixture in TREE:
        shutil.copyfile(source / fixture, root / relative)
    return root


@pytest.fixture
def proc_root(tmp_path: Path) -> Path:
    """A procfs tree built from the recorded 2-vCPU snapshot (net_dev becomes net/dev)."""
    return build_proc_root(tmp_path / "proc")


@pytest.fixture
def fake_ssh(tmp_path: Path) -> Path:
    path = tmp_path / "fake-ssh"
    path.write_text(FAKE_SSH)
    path.chmod(0o755)
    return path
