"""A real daemon whose /proc/net/dev sometimes prints 2^64 - 1 for a counter.

Some NIC drivers print 18446744073709551615 ("not available"). The daemon is
``collectbus daemon start`` reading a copy of a recorded /proc
(tests/data/procfs/fc-6.18-2cpu) while the test swaps net/dev between the
recorded file and the same file with eth0's received bytes at 2^64 - 1. Every
collection of the run must be stored, the refused value be visible in
``collectbus db status`` (as a quarantined value, or, once the host parser
turns such values into NULL itself, as the ``out_of_range`` detail of its
collection), and SIGTERM must leave no collection unwritten.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.integration.cli_helpers import assert_stopped, collectbus, collectbus_env

pytestmark = pytest.mark.slow

FC = Path(__file__).resolve().parents[1] / "data" / "procfs" / "fc-6.18-2cpu"
FILES = {
    "stat": "stat",
    "meminfo": "meminfo",
    "vmstat": "vmstat",
    "diskstats": "diskstats",
    "net/dev": "net_dev",
    "loadavg": "loadavg",
    "uptime": "uptime",
}
CONFIG = (
    '[collectors.host]\ninterval = "1s"\ncgroup = "off"\n'
    "[collectors.host_inventory]\nenabled = false\n"
)
NOT_AVAILABLE = 2**64 - 1
#: The run: recorded net/dev, then the poisoned one, then recorded again.
PHASE_S = 3.0


def _proc_root(tmp_path: Path) -> Path:
    root = tmp_path / "proc"
    (root / "net").mkdir(parents=True)
    for relative, name in FILES.items():
        shutil.copyfile(FC / name, root / relative)
    return root


def _net_dev(rx_bytes: int | None) -> bytes:
    """The recorded net/dev with eth0's received bytes set (None: as recorded),
    always the same length: the collector keeps the file open and re-reads it
    in place, as it does /proc."""
    out = []
    for line in (FC / "net_dev").read_text().splitlines(keepends=True):
        if line.lstrip().startswith("eth0:"):
            name, _, counters = line.partition(":")
            fields = counters.split()
            if rx_bytes is not None:
                fields[0] = str(rx_bytes)
            fields[0] = fields[0].rjust(len(str(NOT_AVAILABLE)))
            line = f"{name}: {' '.join(fields)}\n"
        out.append(line)
    return "".join(out).encode()


def _swap(path: Path, content: bytes) -> None:
    """Overwrite the file in place, in one write, as its content changes in /proc."""
    fd = os.open(path, os.O_WRONLY)
    try:
        assert os.pwrite(fd, content, 0) == len(content)
    finally:
        os.close(fd)


def _wait_for(what: str, ready: object, deadline_s: float = 60) -> None:
    deadline = time.monotonic() + deadline_s
    while not ready():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"no {what} within {deadline_s:g} s"
        time.sleep(0.2)


def test_a_counter_no_column_holds_costs_only_itself(tmp_path: Path) -> None:
    root = _proc_root(tmp_path)
    recorded, poisoned = _net_dev(None), _net_dev(NOT_AVAILABLE)
    assert len(recorded) == len(poisoned)
    (root / "net" / "dev").write_bytes(recorded)
    (tmp_path / "collectbus.toml").write_text(CONFIG)
    url = f"sqlite:///{tmp_path / 'daemon.db'}"
    env = collectbus_env(tmp_path, url)
    log_path = tmp_path / "collectbus.log"

    started = collectbus("--proc-root", str(root), "daemon", "start", cwd=tmp_path, env=env)
    assert started.returncode == 0, started.stderr
    try:
        _wait_for("first collection", lambda: "store: " in log_path.read_text() or _logged(url))
        time.sleep(PHASE_S)
        _swap(root / "net" / "dev", poisoned)
        time.sleep(PHASE_S)
        _swap(root / "net" / "dev", recorded)
        time.sleep(PHASE_S)
    finally:
        stopped = collectbus("daemon", "stop", cwd=tmp_path, env=env)
    assert_stopped(stopped, tmp_path, env)

    log = log_path.read_text()
    assert "Traceback" not in log
    (closing,) = [line for line in log.splitlines() if "collectbus daemon stopped: " in line]
    counts = re.search(
        r"stopped: (\d+) collections, (\d+) write failures, (\d+) collections not written, "
        r"(\d+) values or rows quarantined, (\d+) collections refused",
        closing,
    )
    assert counts is not None, closing
    made, failures, unwritten, _, refused = (int(n) for n in counts.groups())
    # Nothing waits in the writer's buffer or was dropped at SIGTERM.
    assert (failures, unwritten, refused) == (0, 0, 0), closing

    engine = sa.create_engine(url)
    with engine.connect() as conn:
        logged = conn.execute(
            sa.text("SELECT started_ns, status, details FROM collection_log ORDER BY started_ns")
        ).all()
        mem = conn.execute(sa.text("SELECT count(*) FROM host_mem")).scalar_one()
        lo = conn.execute(sa.text("SELECT count(*) FROM host_net WHERE iface = 'lo'")).scalar_one()
    engine.dispose()
    # Every collection made is stored, and so is every sample with it: the
    # poisoned ones too, but for the value no column holds.
    assert len(logged) == made >= 3 * PHASE_S - 2
    assert all(status == "ok" for _, status, _ in logged)
    assert mem == lo == made
    details = [json.loads(d) if d else {} for _, _, d in logged]
    flagged = [d for d in details if "quarantined" in d or "out_of_range" in d]
    assert flagged, details
    assert len(flagged) < len(details)  # the recorded file's samples are clean

    status = collectbus("db", "status", cwd=tmp_path, env=env)
    assert status.returncode == 0, status.stderr
    shown = status.stdout
    assert re.search(r"quarantined .* host_net\.rx_bytes .*18446744073709551615", shown) or (
        "out_of_range" in shown
    ), shown
    warnings = [line for line in log.splitlines() if ": WARNING: " in line or ": ERROR: " in line]
    assert len(warnings) <= 1, warnings  # one cause, logged once


def _logged(url: str) -> bool:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return bool(conn.execute(sa.text("SELECT count(*) FROM collection_log")).scalar_one())
    except sa.exc.SQLAlchemyError:
        return False
    finally:
        engine.dispose()
