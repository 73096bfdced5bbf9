"""A fleet end to end: an agent (``collectbus daemon run`` with ``[sink.nats]``)
publishes host samples read from a recorded /proc to a real nats-server with
JetStream; ``collectbus ingest`` writes them into PostgreSQL; ``collectbus
host`` reads them back. And its faults: ingest SIGKILLed and restarted,
nats-server restarted under the agent. What the agent says it published is
counted against the rows stored: nothing lost, nothing doubled.

The recorded /proc is tests/data/procfs/fc-6.18-2cpu, copied, with its CPU
counters advanced by a thread of the test (half busy, half idle), so that the
rates are not all zero.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.conftest import NatsServer
from tests.integration.cli_helpers import collectbus, collectbus_env

pytestmark = pytest.mark.slow

FC = Path(__file__).resolve().parents[1] / "data" / "procfs" / "fc-6.18-2cpu"
HOST = "node-a.example"


class AdvancingProc:
    """A copy of the recorded /proc whose ``cpu`` lines advance: each step adds
    ``busy`` ticks of user time and as many of idle time to every CPU."""

    def __init__(self, root: Path) -> None:
        self.proc = root / "proc"
        (self.proc / "net").mkdir(parents=True)
        (self.proc / "pressure").mkdir()
        for name in ("meminfo", "vmstat", "diskstats", "loadavg", "uptime"):
            (self.proc / name).write_bytes((FC / name).read_bytes())
        (self.proc / "net" / "dev").write_bytes((FC / "net_dev").read_bytes())
        for resource in ("cpu", "io", "memory"):
            (self.proc / "pressure" / resource).write_bytes(
                (FC / f"pressure_{resource}").read_bytes()
            )
        self._stat = (FC / "stat").read_text()
        self.steps = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._write()

    def _write(self) -> None:
        k = self.steps * 10

        def advance(match: re.Match[str]) -> str:
            values = [int(v) for v in match.group(2).split()]
            values[0] += k  # user
            values[3] += k  # idle
            return f"{match.group(1)} {' '.join(map(str, values))}"

        text = re.sub(r"^(cpu\d*) +([\d ]+)$", advance, self._stat, flags=re.M)
        # In place, in one write: the collector keeps the file open and re-reads
        # it (a renamed new file would never be seen). Counters only grow, so the
        # text never gets shorter and nothing old is left at its end.
        fd = os.open(self.proc / "stat", os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            os.pwrite(fd, text.encode(), 0)
        finally:
            os.close(fd)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.steps += 1
            self._write()

    def __enter__(self) -> AdvancingProc:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()


class Fleet:
    """One agent's config and the processes of a test."""

    def __init__(self, tmp_path: Path, nats_url: str, pg_url: str, proc: Path) -> None:
        self.tmp_path = tmp_path
        self.pg_url = pg_url
        self.env = collectbus_env(tmp_path, pg_url)
        self.config = tmp_path / "agent.toml"
        self.config.write_text(
            f"""
host = "{HOST}"
[bus.tiers]
fast = "100ms"
system = "10s"
inventory = "5m"
[collectors.host]
tier = "fast"
proc_root = "{proc}"
cgroup = "off"
[collectors.host_inventory]
enabled = false
[sink.nats]
url = "{nats_url}"
stream = "FLEET"
cluster = "lab"
local_store = false
publish_timeout = "1s"
"""
        )
        self.agent_log = tmp_path / "agent.stderr"
        self.agent: subprocess.Popen[bytes] | None = None

    def start_agent(self) -> None:
        with self.agent_log.open("ab") as log:
            self.agent = subprocess.Popen(
                [sys.executable, "-m", "collectbus", "--config", str(self.config), "daemon", "run"],
                cwd=self.tmp_path,
                env=self.env,
                stdout=log,
                stderr=log,
            )
        # Up (its signal handlers set) before the test goes on.
        deadline = time.monotonic() + 60
        while "collectbus daemon started" not in self.agent_log.read_text():
            assert self.agent.poll() is None, self.agent_log.read_text()
            assert time.monotonic() < deadline, self.agent_log.read_text()
            time.sleep(0.05)

    def stop_agent(self) -> int:
        """Stop the agent with SIGTERM; the collections it says it published."""
        assert self.agent is not None
        self.agent.send_signal(signal.SIGTERM)
        assert self.agent.wait(60) == 0, self.agent_log.read_text()
        text = self.agent_log.read_text()
        found = re.findall(r"nats: (\d+) collections published, (\d+) dropped, (\d+) refused", text)
        assert len(found) == 1, text
        published, dropped, refused = map(int, found[0])
        assert (dropped, refused) == (0, 0), text
        return published

    def start_ingest(self, log_name: str = "ingest.stderr") -> subprocess.Popen[bytes]:
        with (self.tmp_path / log_name).open("ab") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "collectbus", "--config", str(self.config), "-v",
                 "ingest", "--batch", "7"],
                cwd=self.tmp_path,
                env=self.env,
                stdout=log,
                stderr=log,
            )  # fmt: skip

    def stored(self) -> int:
        """Collections in the store (their collection_log rows); 0 before the schema."""
        with psycopg.connect(self.pg_url) as conn:
            exists = conn.execute("SELECT to_regclass('collection_log') IS NOT NULL").fetchone()
            if not exists or not exists[0]:
                return 0
            row = conn.execute("SELECT count(*) FROM collection_log").fetchone()
        assert row is not None
        return int(row[0])

    def wait_stored(self, count: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self.stored() < count and time.monotonic() < deadline:
            time.sleep(0.2)
        assert self.stored() == count

    def assert_once(self, published: int) -> None:
        """Every published collection stored once: its log row, and its CPU rows."""
        with psycopg.connect(self.pg_url) as conn:
            log_rows, log_distinct = conn.execute(
                "SELECT count(*), count(DISTINCT (source, host, started_ns)) FROM collection_log"
            ).fetchone() or (0, 0)
            cpu_rows, cpu_distinct, ticks = conn.execute(
                "SELECT count(*), count(DISTINCT (host_id, time_ns, cpu)), "
                "count(DISTINCT time_ns) FROM host_cpu"
            ).fetchone() or (0, 0, 0)
        assert (log_rows, log_distinct) == (published, published)
        assert (cpu_rows, cpu_distinct) == (3 * published, 3 * published)  # cpu, cpu0, cpu1
        assert ticks == published


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    assert process.wait(60) == 0


@pytest.fixture
def proc(tmp_path: Path) -> Iterator[Path]:
    with AdvancingProc(tmp_path) as advancing:
        yield advancing.proc


@pytest.fixture
def fleet(tmp_path: Path, nats_server: NatsServer, postgres_url: str, proc: Path) -> Fleet:
    return Fleet(tmp_path, nats_server.url, postgres_url, proc)


def test_agent_to_nats_to_ingest_to_postgres_and_host_shows_rates(fleet: Fleet) -> None:
    fleet.start_agent()
    time.sleep(3)
    published = fleet.stop_agent()
    assert published >= 10
    ingest = fleet.start_ingest()
    try:
        fleet.wait_stored(published)
    finally:
        _stop(ingest)
    fleet.assert_once(published)
    summary = (fleet.tmp_path / "ingest.stderr").read_text()
    assert f"{published} collections written, 0 already stored, 0 dead letters" in summary

    shown = collectbus(
        "--db", fleet.pg_url, "host", "--host", HOST, "--since", "10m", "--format", "json",
        cwd=fleet.tmp_path, env=fleet.env,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    rows = json.loads(shown.stdout)
    assert len(rows) == published  # one row per sample, the first without rates
    assert {r["host"] for r in rows} == {HOST}
    # Half busy, half idle, as the test advanced the counters.
    busy = [r["cpu_percent"] for r in rows if r["cpu_percent"] is not None]
    assert busy
    assert all(p == pytest.approx(50.0, abs=0.5) for p in busy)


def test_ingest_killed_and_restarted_loses_and_doubles_nothing(fleet: Fleet) -> None:
    fleet.start_agent()
    kills = 0
    try:
        for _ in range(3):
            ingest = fleet.start_ingest()
            # Killed while it works: after its first commit, at a moment it chose.
            deadline = time.monotonic() + 30
            before = fleet.stored()
            while fleet.stored() <= before and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.3)
            ingest.send_signal(signal.SIGKILL)
            ingest.wait(10)
            kills += 1
    finally:
        published = fleet.stop_agent()
    assert kills == 3
    ingest = fleet.start_ingest("ingest-last.stderr")
    try:
        fleet.wait_stored(published)
        time.sleep(1.5)  # anything delivered again meanwhile would show now
    finally:
        _stop(ingest)
    fleet.assert_once(published)


def test_nats_server_restarted_the_agent_buffer_drains(
    fleet: Fleet, nats_server: NatsServer
) -> None:
    fleet.start_agent()
    time.sleep(2)
    nats_server.stop()
    # Longer than publish_timeout: the client's own reconnect buffer does not hide it.
    time.sleep(4)  # the agent collects into its buffer meanwhile
    nats_server.start()
    time.sleep(6)  # its backoff, then the buffer drains
    published = fleet.stop_agent()
    log = fleet.agent_log.read_text()
    # One line when the outage began, one when its buffer had drained.
    assert log.count("collecting goes on, keeping up to") == 1, log
    backlog = re.findall(
        r"nats: .* is back after \d+ s: (\d+) collections published, 0 dropped", log
    )
    assert len(backlog) == 1, log
    # What was collected while NATS was away (4 s at 100 ms, and the backoff), published after.
    assert int(backlog[0]) >= 20, log
    ingest = fleet.start_ingest()
    try:
        fleet.wait_stored(published)
    finally:
        _stop(ingest)
    fleet.assert_once(published)
