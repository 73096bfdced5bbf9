"""Record this fixture: a few processes' /proc files, twice, 1 s apart, with psutil's view.

Run as root from the repository root: ``.venv/bin/python tests/data/procfs/pids-6.18/record.py``.
It starts two children: one that keeps a CPU busy, and one that names
itself ``(a) b)`` through ``/proc/self/comm`` and sleeps. It copies
``stat``, ``statm``, ``status``, ``io`` and ``cmdline`` of pid 1, the two children and
the oldest process of another user (if any) into ``t0/`` and, a second later,
``t1/`` (with ``uptime``; a file root may not read, such as pid 1's ``io``
in a container, is left out), and writes what psutil says of them at each moment
into ``psutil_oracle.json``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
FILES = ("stat", "statm", "status", "io", "cmdline")


def snapshot(name: str, procs: list[psutil.Process]) -> dict[str, object]:
    root = HERE / name
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir()
    mono = time.monotonic()
    shutil.copyfile("/proc/uptime", root / "uptime")
    pids = [proc.pid for proc in procs]
    for pid in pids:
        (root / str(pid)).mkdir()
        for file in FILES:
            try:
                data = Path(f"/proc/{pid}/{file}").read_bytes()
            except PermissionError:
                continue  # left out: unreadable, as pid 1's io in a container
            (root / str(pid) / file).write_bytes(data)
    seen = {}
    for proc in procs:
        pid = proc.pid
        try:
            io: psutil._pslinux.pio | None = proc.io_counters()
        except psutil.AccessDenied:
            io = None
        seen[str(pid)] = {
            "name": proc.name(),
            "username": proc.username(),
            "num_threads": proc.num_threads(),
            "rss": proc.memory_info().rss,
            "read_bytes": None if io is None else io.read_bytes,
            "write_bytes": None if io is None else io.write_bytes,
            "cpu_percent": proc.cpu_percent(None),
        }
    return {"monotonic_s": mono, "processes": seen}


def main() -> None:
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    odd = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time; open('/proc/self/comm', 'w').write('(a) b)'); time.sleep(30)",
        ]
    )
    try:
        time.sleep(0.5)
        others = sorted(
            (p for p in psutil.process_iter(["uids", "create_time"]) if p.info["uids"].real != 0),
            key=lambda p: p.info["create_time"],
        )
        pids = [1, busy.pid, odd.pid, *[p.pid for p in others[:1]]]
        procs = [psutil.Process(pid) for pid in pids]
        for proc in procs:
            proc.cpu_percent(None)  # psutil's interval starts here
        t0 = snapshot("t0", procs)
        time.sleep(1.0)
        t1 = snapshot("t1", procs)
        oracle = {
            "kernel": os.uname().release,
            "psutil": psutil.__version__,
            "clk_tck": os.sysconf("SC_CLK_TCK"),
            "page_size": os.sysconf("SC_PAGE_SIZE"),
            "pids": {"init": 1, "busy": busy.pid, "odd_name": odd.pid},
            "t0": t0,
            "t1": t1,
        }
        (HERE / "psutil_oracle.json").write_text(json.dumps(oracle, indent=2) + "\n")
    finally:
        busy.kill()
        odd.kill()
        busy.wait()
        odd.wait()


if __name__ == "__main__":
    main()
