"""Budget: ``collectbus`` answers at once, as ``sacct``, ``squeue`` and ``sar`` do.

CPU time (user + system, the child's rusage) of whole ``collectbus`` processes,
the median of ``--runs`` runs each, against anchors measured in the same run:

- ``collectbus --help`` and ``collectbus --version``: <= 1.5x ``python -c "import click"``;
- ``collectbus host --since 5m --format json`` on a store holding one hour of
  1 s samples of one host, and ``collectbus jobs --since 1d`` on a store
  holding 10,000 jobs: <= 1.5x ``python -c "import sqlalchemy"``.

``python -c pass`` is printed too: the interpreter's own start. For the two
commands that read a store, the libraries they import are listed with their
import times, the first place to look when they go over budget. The stores are
built in a temporary directory with the store API; the commands run with that
directory as their working directory and no config file, after one warm-up
run each (it writes the bytecode cache, as any installation has). The runs of all
commands are interleaved, so that a busy moment of the (shared) machine
spreads over all of them.

    python bench/cli_startup.py
    python bench/cli_startup.py --runs 15
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from collectbus.jobtrack.writer import TrackedStore
from collectbus.records import COMPLETE_LISTING, CollectionEvent
from collectbus.store import open as open_store
from collectbus.testing.hosts import make_host_sample
from collectbus.testing.schedulers import make_pbs_job

BUDGET_RATIO = 1.5
S = 1_000_000_000
HOST_SECONDS = 3600
JOBS = 10_000
STATES = ("queued",) * 12 + ("running",) * 7 + ("held",)
#: Libraries whose import time is shown for the commands that read the store.
HEAVY = ("pandas", "numpy", "sqlalchemy", "alembic", "pydantic", "rich", "zstandard")


def build_host_store(url: str, now_ns: int) -> None:
    """One hour of 1 s samples of one host, the newest a second ago."""
    store = open_store(url)
    try:
        first = now_ns - HOST_SECONDS * S
        batch = []
        for i in range(HOST_SECONDS):
            batch.append(make_host_sample("bench", first + i * S))
            if len(batch) == 300:
                store.write(batch)
                batch = []
        store.write(batch)
    finally:
        store.close()


def build_jobs_store(url: str, now_ns: int) -> None:
    """10,000 PBS jobs submitted in the last 20 hours, as one complete listing."""
    records = []
    for i in range(JOBS):
        state = STATES[i % len(STATES)]
        submit = now_ns - (72_000 - 7 * i) * S
        records.append(
            make_pbs_job(
                100_000 + i,
                submit_ns=submit,
                observed_ns=now_ns - S,
                state=state,
                queue=("prod", "debug", "large")[i % 3],
                nodes=1 + i % 16,
                start_ns=submit + 60 * S if state == "running" else None,
                walltime_used_s=600 if state == "running" else None,
            )
        )
    event = CollectionEvent(
        source="pbs",
        host="bench",
        started_ns=now_ns - S,
        duration_ns=S,
        status="ok",
        records=len(records),
        details=(COMPLETE_LISTING, ("cluster", "aurora")),
    )
    store = open_store(url)
    try:
        TrackedStore(store).write([*records, event])
    finally:
        store.close()


def cpu_seconds(argv: Sequence[str], cwd: Path, env: dict[str, str]) -> tuple[float, str]:
    """The CPU time of one run of ``argv`` (its rusage), and its standard output."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)}: exit {done.returncode}: {done.stderr.strip()}")
    used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return used, done.stdout


def collectbus_argv() -> list[str]:
    """The ``collectbus`` console script next to this Python, as users run it."""
    script = Path(sys.executable).parent / "collectbus"
    return [str(script)] if script.exists() else [sys.executable, "-m", "collectbus"]


def heavy_imports(argv: Sequence[str], cwd: Path, env: dict[str, str]) -> str:
    """The libraries a ``python -m collectbus`` run imports, by import time (``-X importtime``)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "collectbus", *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    costs = {}
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            _self, cumulative, name = line.removeprefix("import time:").split("|")
            if name.strip() in HEAVY:
                costs[name.strip()] = int(cumulative) / 1e3
    ranked = sorted(costs.items(), key=lambda item: -item[1])
    return ", ".join(f"{name} {ms:.0f} ms" for name, ms in ranked) or "none"


def check_output(name: str, stdout: str) -> str:
    """What the command printed, in short: the benchmark must time real answers."""
    if name == "host":
        rows = json.loads(stdout)
        if not 100 <= len(rows) <= 301:
            raise SystemExit(f"host --since 5m returned {len(rows)} rows, expected up to 300")
        return f"{len(rows)} rows"
    if name == "jobs":
        shown = sum(1 for line in stdout.splitlines() if ".pbs01." in line)
        if shown != 100:
            raise SystemExit(f"jobs --since 1d showed {shown} jobs, expected its --limit, 100")
        return f"{shown} of {JOBS:,} jobs (its --limit)"
    return ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9, help="runs of each command (median)")
    args = parser.parse_args()
    py = sys.executable
    cb = collectbus_argv()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        host_url = f"sqlite:///{work / 'host.db'}"
        jobs_url = f"sqlite:///{work / 'jobs.db'}"
        build_jobs_store(jobs_url, time.time_ns())
        # Last, and up to now: the 5 minutes asked for slide past its newest sample as the runs go.
        build_host_store(host_url, time.time_ns())
        # Bytecode is cached, as in any installation: the first (warm-up) run writes it.
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("COLLECTBUS_") and k != "PYTHONDONTWRITEBYTECODE"
        }
        env["XDG_CONFIG_HOME"] = str(work / "xdg")
        env["COLUMNS"] = "200"
        commands: dict[str, tuple[list[str], str | None]] = {
            "python -c pass": ([py, "-c", "pass"], None),
            "python -c 'import click'": ([py, "-c", "import click"], None),
            "python -c 'import sqlalchemy'": ([py, "-c", "import sqlalchemy"], None),
            "--help": ([*cb, "--help"], "python -c 'import click'"),
            "--version": ([*cb, "--version"], "python -c 'import click'"),
            "host": (
                [*cb, "--db", host_url, "host", "--since", "5m", "--format", "json"],
                "python -c 'import sqlalchemy'",
            ),
            "jobs": (
                [*cb, "--db", jobs_url, "jobs", "--since", "1d"],
                "python -c 'import sqlalchemy'",
            ),
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        notes: dict[str, str] = {}
        for argv, _anchor in commands.values():
            cpu_seconds(argv, work, env)  # warm-up: bytecode and the page cache
        for _ in range(args.runs):
            for name, (argv, _anchor) in commands.items():
                used, stdout = cpu_seconds(argv, work, env)
                times[name].append(used)
                notes.setdefault(name, check_output(name, stdout))
        imported = {
            name: heavy_imports(commands[name][0][len(cb) :], work, env)
            for name in ("host", "jobs")
        }
    medians = {name: statistics.median(values) for name, values in times.items()}
    labels = {
        "--help": "collectbus --help",
        "--version": "collectbus --version",
        "host": "collectbus host --since 5m --format json (1 h of 1 s samples)",
        "jobs": "collectbus jobs --since 1d (10,000 jobs)",
    }
    print(f"CPU time per process (user + system), median of {args.runs} runs; python {py}")
    ok = True
    for name, (_argv, anchor) in commands.items():
        label = labels.get(name, name)
        line = f"  {label:<62} {medians[name] * 1e3:7.0f} ms"
        if anchor is not None:
            ratio = medians[name] / medians[anchor]
            passed = ratio <= BUDGET_RATIO
            ok = ok and passed
            line += (
                f"  {ratio:4.2f}x {anchor} (budget {BUDGET_RATIO}x) {'ok' if passed else 'FAIL'}"
            )
        if notes.get(name):
            line += f"  [{notes[name]}]"
        print(line)
    for name, costs in imported.items():
        print(f"  {name} imports (wall time, -X importtime, one run): {costs}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
