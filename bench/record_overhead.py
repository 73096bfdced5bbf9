"""What ``collectbus record`` costs: CPU time (user + sys) per host per sample.

Rows, all measured in this run:

- anchor: psutil reading the same figures in this process (``cpu_times``,
  ``virtual_memory``, ``swap_memory``, ``disk_io_counters``,
  ``net_io_counters``, ``getloadavg``), per call;
- the local host: a Recorder of this host alone (procfs through the bus,
  scheduler, subscriber and result buffer included), CPU of this process per
  sample;
- an SSH host: a Recorder of one host reached through a throw-away sshd on
  127.0.0.1 (started as the tests start it), split into the collectbus side
  (this process, its ssh client and the ControlMaster process) and the remote
  side (sshd's session processes and the remote loop, python3 here, read from
  the server's cumulative child times once the session has ended). Connection
  set-up is included, spread over the samples. Without sshd the row is
  skipped with the reason.

Each figure is printed with its ratio to the anchor. No budget is enforced.

    python bench/record_overhead.py [--samples 300] [--interval 0.02]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.sshd import ThrowawaySshd, find_sshd

from collectbus.record import Recorder

TICK_S = os.sysconf("SC_CLK_TCK")


def psutil_sample() -> None:
    psutil.cpu_times(percpu=True)
    psutil.virtual_memory()
    psutil.swap_memory()
    psutil.disk_io_counters(perdisk=True)
    psutil.net_io_counters(pernic=True)
    psutil.getloadavg()


def anchor_us(calls: int) -> float:
    psutil_sample()
    best = float("inf")
    for _ in range(5):
        start = time.process_time()
        for _ in range(calls):
            psutil_sample()
        best = min(best, (time.process_time() - start) / calls * 1e6)
    return best


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def proc_cpu_s(pid: int, *, children: bool = False) -> float:
    """utime + stime (or cutime + cstime) of a process, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    first = 13 if children else 11  # fields 16-17 or 14-15 of man 5 proc, after "state"
    return (int(fields[first]) + int(fields[first + 1])) / TICK_S


def masters_cpu_s(control_dir: str, exclude: set[int]) -> float:
    """CPU of the ssh ControlMaster processes, found by their control folder."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in exclude:
            continue
        try:
            if control_dir.encode() in (entry / "cmdline").read_bytes():
                total += proc_cpu_s(int(entry.name))
        except OSError:
            continue
    return total


def record(rec: Recorder, samples: int, host: str) -> int:
    rec.start()
    while rec.samples_seen(host) < samples:
        time.sleep(0.1)
    return 0


def local_row(samples: int, interval: float) -> float:
    rec = Recorder(["localhost"], interval=interval, max_samples=samples * 2)
    start = time.process_time()
    record(rec, samples, "localhost")
    data = rec.stop()
    spent = time.process_time() - start
    return spent / len(data.good_samples("localhost")) * 1e6


def ssh_row(samples: int, interval: float) -> tuple[float, float, int] | str:
    binary = find_sshd()
    if binary is None:
        return "skipped: no sshd (apt-get install -y openssh-server)"
    with (
        tempfile.TemporaryDirectory(prefix="cb-bench-") as tmp,
        ThrowawaySshd(Path(tmp), binary) as sshd,
    ):
        assert sshd.pid is not None
        rec = Recorder(["h1"], interval=interval, max_samples=samples * 2, timeout=5.0,
                       ssh_config=str(sshd.ssh_config))  # fmt: skip
        remote_before = proc_cpu_s(sshd.pid, children=True)
        children_before = children_cpu_s()
        start = time.process_time()
        record(rec, samples, "h1")
        control_dir = rec.ssh_control_dir
        assert control_dir is not None
        master = masters_cpu_s(control_dir, exclude={os.getpid()})
        data = rec.stop()
        local = time.process_time() - start + children_cpu_s() - children_before + master
        # The session's processes end with the ControlMaster; sshd reaps them.
        deadline = time.monotonic() + 5
        remote = proc_cpu_s(sshd.pid, children=True) - remote_before
        while time.monotonic() < deadline:
            time.sleep(0.2)
            now = proc_cpu_s(sshd.pid, children=True) - remote_before
            if now == remote and now > 0:
                break
            remote = now
        n = len(data.good_samples("h1"))
        return local / n * 1e6, remote / n * 1e6, n


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--interval", type=float, default=0.02)
    args = parser.parse_args()
    anchor = anchor_us(500)
    local = local_row(args.samples, args.interval)
    ssh = ssh_row(args.samples, args.interval)
    print("collectbus record: CPU time (user+sys) per host per sample")
    print(f"  anchor, psutil reading the same figures      {anchor:8.1f} us   1.00x")
    print(
        f"  local host (procfs, bus, buffer)             {local:8.1f} us   {local / anchor:5.2f}x"
    )
    if isinstance(ssh, str):
        print(f"  SSH host: {ssh}")
    else:
        here, remote, n = ssh
        print(
            f"  SSH host, collectbus side (+ ssh, master)    {here:8.1f} us   {here / anchor:5.2f}x"
        )
        print(
            f"  SSH host, remote side (sshd, its loop)       {remote:8.1f} us   {remote / anchor:5.2f}x"
        )
        print(f"  ({n} SSH samples at {args.interval:g} s; connection set-up included)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
