"""What ``collectbus record`` costs: CPU time (user + sys) per host per sample.

Budget: recording the local host costs <= 1.0x psutil per sample.

What is compared, all measured in this run, at the same ``--interval``:

- anchor: a plain psutil sampler, one thread that sleeps until each tick of
  the same aligned schedule and reads what a host sample holds:
  ``cpu_times(percpu=True)`` (/proc/stat), ``virtual_memory`` (/proc/meminfo),
  ``swap_memory`` (/proc/meminfo and /proc/vmstat),
  ``disk_io_counters(perdisk=True)`` (/proc/diskstats),
  ``net_io_counters(pernic=True)`` (/proc/net/dev) and ``getloadavg``; CPU of
  this process per sample, from the first tick to the last. A sample taken
  every few milliseconds finds the caches cold and costs two or three times
  one taken back to back, so the anchor samples at the recorder's interval;
  the back-to-back figure is printed too, for reference only;
- the local host: a Recorder of this host alone, everything included: its
  bus (threads started and stopped), the host collector (the same files,
  plus /proc/uptime, PSI and the cgroup's files when present, which psutil
  does not read), the subscriber and the result buffer, and the last sample
  stop() may take. CPU of this process from before start() to after stop(),
  less what this script spends reading the per-thread figures, divided by
  the good samples recorded. This is the row held to the budget;
- under it, where that time goes: the host collector alone at the same
  interval (a plain loop, as the anchor), and the CPU of each thread of the
  recorder's bus per sample (between its first and last samples);
- an SSH host: a Recorder of one host reached through a throw-away sshd on
  127.0.0.1 (started as the tests start it), split into the collectbus side
  (this process, its ssh client and the ControlMaster process) and the remote
  side (sshd's session processes and the remote loop, python3 here, read from
  the server's cumulative child times once the session has ended). Connection
  set-up is included, spread over the samples. Without sshd the row is
  skipped with the reason.

The anchor, the host collector alone and the local host run one after the
other, ``--rounds`` times (default 3), so that they share the machine's
conditions; each row's best round counts (the least disturbed by the rest of
the machine), the per-thread lines being those of the local host's best
round. The SSH rows run once, after them.

Each figure is printed with its ratio to the anchor; the local host's is
held to the budget (ok or FAIL; ``--check`` exits 1 on FAIL). The SSH rows
have no budget.

    python bench/record_overhead.py [--samples 300] [--interval 0.02] [--rounds 3] [--check]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.sshd import ThrowawaySshd, find_sshd

from collectbus.collectors.base import CollectContext
from collectbus.collectors.host.collector import HostCollector
from collectbus.recording import Recorder

TICK_S = os.sysconf("SC_CLK_TCK")


def psutil_sample() -> None:
    psutil.cpu_times(percpu=True)
    psutil.virtual_memory()
    psutil.swap_memory()
    psutil.disk_io_counters(perdisk=True)
    psutil.net_io_counters(pernic=True)
    psutil.getloadavg()


BUDGET_RATIO = 1.0


def back_to_back_us(calls: int) -> float:
    """psutil sampled in a tight loop: CPU us per sample (best of 5 rounds)."""
    psutil_sample()
    best = float("inf")
    for _ in range(5):
        start = time.process_time()
        for _ in range(calls):
            psutil_sample()
        best = min(best, (time.process_time() - start) / calls * 1e6)
    return best


def paced_us(sample: Callable[[], object], samples: int, interval: float) -> float:
    """CPU us per sample of a loop that sleeps until each tick and samples."""
    sample()
    step = int(interval * 1e9)
    tick = time.monotonic_ns()
    start = time.process_time()
    for _ in range(samples):
        tick += step
        left = tick - time.monotonic_ns()
        if left > 0:
            time.sleep(left / 1e9)
        sample()
    return (time.process_time() - start) / samples * 1e6


def thread_cpu_ns() -> dict[str, int]:
    """CPU time of each live thread of this process, by thread name (numbers dropped)."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    spent: dict[str, int] = {}
    for task in Path("/proc/self/task").iterdir():
        name = names.get(int(task.name))
        if name is None:
            continue
        try:
            ns = int((task / "schedstat").read_text().split()[0])
        except OSError:  # the thread ended meanwhile
            continue
        key = name.rstrip("0123456789-")
        spent[key] = spent.get(key, 0) + ns
    return spent


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


def local_row(samples: int, interval: float) -> tuple[float, dict[str, float]]:
    """CPU us per sample of recording this host, and per thread of its bus
    (measured from the first sample to the last)."""
    rec = Recorder(["localhost"], interval=interval, max_samples=samples * 2)
    start = time.process_time()
    record(rec, 1, "localhost")
    probe = time.thread_time()  # reading the per-thread figures is not the recorder's
    first, before = rec.samples_seen("localhost"), thread_cpu_ns()
    probe = time.thread_time() - probe
    while rec.samples_seen("localhost") < samples:
        time.sleep(0.1)
    again = time.thread_time()
    last, after = rec.samples_seen("localhost"), thread_cpu_ns()
    probe += time.thread_time() - again
    data = rec.stop()
    spent = time.process_time() - start - probe
    n = last - first
    threads = {
        k: (after[k] - before.get(k, 0)) / n / 1000 for k in after if k.startswith("collectbus")
    }
    return spent / len(data.good_samples("localhost")) * 1e6, threads


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
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--check", action="store_true", help="exit 1 when over budget")
    args = parser.parse_args()
    hot = back_to_back_us(500)
    collector = HostCollector(proc_root="/proc", host="localhost")

    def host_sample() -> None:
        collector.collect(CollectContext(host="localhost"))

    anchors, alones, locals_ = [], [], []
    for _ in range(args.rounds):  # interleaved: each row meets the same machine
        anchors.append(paced_us(psutil_sample, args.samples, args.interval))
        alones.append(paced_us(host_sample, args.samples, args.interval))
        locals_.append(local_row(args.samples, args.interval))
    collector.close()
    anchor, alone = min(anchors), min(alones)
    local, threads = min(locals_, key=lambda row: row[0])
    ssh = ssh_row(args.samples, args.interval)
    verdict = "ok" if local <= BUDGET_RATIO * anchor else "FAIL"
    print(f"collectbus record: CPU time (user+sys) per host per sample, every {args.interval:g} s")
    print(f"  anchor, psutil sampler at the same interval  {anchor:8.1f} us   1.00x")
    print(f"  (psutil back to back: {hot:.1f} us)")
    print(
        f"  local host (procfs, bus, buffer)             {local:8.1f} us   {local / anchor:5.2f}x"
        f"  budget {BUDGET_RATIO:.1f}x: {verdict}"
    )
    print(
        f"    host collector alone at the same interval  {alone:8.1f} us   {alone / anchor:5.2f}x"
    )
    for name, us in sorted(threads.items()):
        print(f"    thread {name:<36}{us:8.1f} us")
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
    return 1 if args.check and verdict == "FAIL" else 0


if __name__ == "__main__":
    sys.exit(main())
