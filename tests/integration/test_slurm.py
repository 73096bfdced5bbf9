"""The Slurm collectors against the real single-node Slurm of ``scripts/slurm-local.sh``.

Jobs that complete, fail (exit 3), time out, are held then released, and an
array are submitted; collection cycles run through the bus while they
progress, until every job is final both in ``squeue`` and in accounting. The
states, the transitions seen, exit codes and wait times are then checked
against ``sacct``'s own figures for the same jobs.

Slurm is found through ``SLURM_CONF`` (default: the script's
``$TMPDIR/collectbus-slurm/slurm.conf``). Without a running Slurm the tests
are skipped with the reason, except when ``CI=true``: then they fail.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import NoReturn

import numpy as np
import pytest
from sqlalchemy import select

from collectbus.bus import CollectionBus, Result
from collectbus.clock import SystemClock
from collectbus.collectors.base import CollectContext
from collectbus.collectors.run import LocalRunner
from collectbus.collectors.slurm.collector import (
    SlurmJobsCollector,
    SlurmNodesCollector,
    SlurmPartitionsCollector,
    SlurmSettings,
)
from collectbus.collectors.slurm.reservations import SlurmReservationsCollector
from collectbus.jobtrack.writer import TrackedStore
from collectbus.pipeline.sink import StoreSink
from collectbus.records import (
    FINAL_JOB_STATES,
    CollectionEvent,
    JobRecord,
    NodeRecord,
    QueueRecord,
    SystemRecord,
)
from collectbus.store import Store
from collectbus.store import open as open_store
from collectbus.store.reservations import read_reservation_history, read_reservations
from collectbus.store.schema import job_history
from tests.integration.cli_helpers import collectbus, collectbus_env

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

NS = 1_000_000_000
DEADLINE_S = 360  # the timed-out job alone takes a minute and more
RANK = {"held": 0, "queued": 0, "running": 1}


def _slurm_conf() -> str:
    default = Path(os.environ.get("TMPDIR", "/tmp")) / "collectbus-slurm" / "slurm.conf"
    return os.environ.get("SLURM_CONF") or str(default)


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI") == "true":
        pytest.fail(f"Slurm is required when CI=true: {reason}")
    pytest.skip(f"no running Slurm ({reason}); start one with scripts/slurm-local.sh start")


def _env(conf: str) -> dict[str, str]:
    return {**os.environ, "SLURM_CONF": conf}


def _run(env: dict[str, str], *argv: str) -> str:
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.strip()}")
    return done.stdout


@dataclass
class Run:
    """What the collection cycles saw of the submitted jobs."""

    tag: str
    env: dict[str, str]
    ids: dict[str, str]  # role -> job id (the array's parent id for "array")
    cycles: int = 0
    history: dict[str, list[JobRecord]] = field(default_factory=lambda: defaultdict(list))
    listings: list[tuple[SystemRecord, int]] = field(default_factory=list)
    node_states: set[str] = field(default_factory=set)
    busiest_partition: int = 0
    finished_from_accounting: list[JobRecord] = field(default_factory=list)
    sacct: dict[str, dict[str, str]] = field(default_factory=dict)
    #: The store every cycle was written to (our jobs only), and its URL.
    store_url: str = ""
    store_dir: Path | None = None

    def last(self, job_id: str) -> JobRecord:
        return self.history[job_id][-1]

    def states(self, job_id: str) -> list[str]:
        seen: list[str] = []
        for record in self.history[job_id]:
            if not seen or seen[-1] != record.state:
                seen.append(record.state)
        return seen


@pytest.fixture(scope="module")
def slurm_env() -> dict[str, str]:
    conf = _slurm_conf()
    if not Path(conf).is_file():
        _unavailable(f"{conf} does not exist")
    if shutil.which("scontrol") is None:
        _unavailable("scontrol is not installed")
    env = _env(conf)
    ping = subprocess.run(
        ["scontrol", "ping"], env=env, capture_output=True, text=True, timeout=30, check=False
    )
    if ping.returncode != 0 or "UP" not in ping.stdout:
        _unavailable(f"scontrol ping: {(ping.stdout + ping.stderr).strip()}")
    return env


def _submit(env: dict[str, str], tag: str, role: str, *args: str) -> str:
    out = _run(env, "sbatch", "--parsable", "-J", f"{tag}-{role}", "-o", "/dev/null", *args)
    return out.strip().split(";")[0]


def _ours(records: tuple[object, ...], tag: str) -> dict[str, JobRecord]:
    return {
        r.job_id: r
        for r in records
        if isinstance(r, JobRecord) and (r.name or "").startswith(f"{tag}-")
    }


def _sacct_rows(env: dict[str, str], tag: str) -> dict[str, dict[str, str]]:
    """sacct's own figures for our jobs, times as epoch seconds."""
    out = _run(
        {**env, "SLURM_TIME_FORMAT": "%s"},
        "sacct", "-a", "-X", "-P", "-S", "now-3600seconds", "-E", "now",
        "-o", "JobID,JobName,State,Submit,Eligible,Start,End,ExitCode,Timelimit",
    )  # fmt: skip
    lines = out.splitlines()
    header = lines[0].split("|")
    rows = [dict(zip(header, line.split("|"), strict=True)) for line in lines[1:] if line]
    return {r["JobID"]: r for r in rows if r["JobName"].startswith(f"{tag}-")}


def _ours_only(result: Result, tag: str) -> Result:
    """The cycle without the jobs of others that share this Slurm, so that the
    stored figures are those of our jobs alone."""
    kept = tuple(
        r
        for r in result.records
        if not isinstance(r, JobRecord) or (r.name or "").startswith(f"{tag}-")
    )
    return replace(result, records=kept)


@pytest.fixture(scope="module")
def run(slurm_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    env = slurm_env
    tag = f"cb{secrets.token_hex(3)}"
    ids = {
        "held": _submit(env, tag, "held", "-H", "--wrap", "sleep 1"),
        "ok": _submit(env, tag, "ok", "--wrap", "sleep 6"),
        "fail": _submit(env, tag, "fail", "--wrap", "sleep 2; exit 3"),
        "timeout": _submit(env, tag, "timeout", "-t", "1", "--wrap", "sleep 600"),
        "array": _submit(env, tag, "array", "-a", "1-3", "--wrap", "sleep 1"),
    }
    result = Run(tag=tag, env=env, ids=ids)
    result.store_dir = tmp_path_factory.mktemp("slurm-store")
    result.store_url = f"sqlite:///{result.store_dir / 'collectbus.db'}"
    store = open_store(result.store_url)
    sink = StoreSink(store, clock=SystemClock(), compact_after_s=3600, compact_every_s=3600)
    runner = LocalRunner(timeout=30, env=env)
    settings = SlurmSettings(timeout_s=30, sacct_lookback_s=3600)
    bus = CollectionBus(host="test")
    bus.add(SlurmJobsCollector(settings, runner=runner), interval=3600, timeout=120)
    bus.add(SlurmNodesCollector(settings, runner=runner), interval=3600, timeout=60)
    bus.add(SlurmPartitionsCollector(settings, runner=runner), interval=3600, timeout=60)
    expected = {ids["held"], ids["ok"], ids["fail"], ids["timeout"]}
    expected |= {f"{ids['array']}_{task}" for task in (1, 2, 3)}
    deadline = time.monotonic() + DEADLINE_S
    released = False
    try:
        while True:
            cycle = bus.collect_now("slurm-jobs")
            assert cycle.event.status == "ok", cycle.event.error
            assert not cycle.stale
            sink(_ours_only(cycle, tag))
            assert sink.pending == 0, sink.last_error
            result.cycles += 1
            ours = _ours(cycle.records, tag)
            for job_id, record in ours.items():
                result.history[job_id].append(record)
            (mark,) = [r for r in cycle.records if isinstance(r, SystemRecord)]
            result.listings.append((mark, len(ours)))
            nodes = bus.collect_now("slurm-nodes")
            sink(nodes)
            result.node_states |= {r.state for r in nodes.records if isinstance(r, NodeRecord)}
            queues = bus.collect_now("slurm-partitions")
            sink(queues)
            for q in queues.records:
                if isinstance(q, QueueRecord) and q.queue == "debug":
                    result.busiest_partition = max(result.busiest_partition, q.jobs_total or 0)
            held = ours.get(ids["held"])
            # Released a second or more after its submission: Slurm's times are
            # whole seconds, and "eligible once released" must be visible in them.
            if (
                not released
                and held is not None
                and held.state == "held"
                and held.submit_ns is not None
                and time.time_ns() >= held.submit_ns + 2 * 10**9
            ):
                _run(env, "scontrol", "release", ids["held"])
                released = True
            done = expected <= ours.keys() and all(
                ours[j].state in FINAL_JOB_STATES for j in expected
            )
            if done:
                result.sacct = _sacct_rows(env, tag)
                accounted = {j for j, row in result.sacct.items() if row["End"].isdigit()}
                if expected <= accounted:
                    break
            if time.monotonic() > deadline:
                states = {j: result.states(j) for j in sorted(expected)}
                pytest.fail(f"jobs not final after {DEADLINE_S} s: {states}")
            time.sleep(0.5)  # poll the scheduler; the deadline bounds the wait
        fresh = SlurmJobsCollector(settings, runner=runner)
        ctx = CollectContext(host="test")
        finished = fresh.finished_jobs(ctx)
        assert ctx.problems == []
        result.finished_from_accounting = list(_ours(tuple(finished), tag).values())
        yield result
    finally:
        bus.stop()
        store.close()
        active = _run(env, "squeue", "-h", "-o", "%i %j")
        leftover = [line.split()[0] for line in active.splitlines() if f" {tag}-" in line]
        if leftover:
            _run(env, "scancel", *leftover)


def test_final_states_and_exit_codes(run: Run) -> None:
    ids = run.ids
    ok, failed, timeout, held = (run.last(ids[r]) for r in ("ok", "fail", "timeout", "held"))
    assert (ok.state, ok.exit_status, ok.exit_signal) == ("completed", 0, None)
    assert (failed.state, failed.native_state, failed.exit_status) == ("failed", "FAILED", 3)
    assert failed.substate == "NonZeroExitCode"
    assert (timeout.state, timeout.native_state, timeout.substate) == (
        "timeout",
        "TIMEOUT",
        "TimeLimit",
    )
    # squeue's raw status says SIGTERM at the limit; accounting says 0:0, and
    # that is what every record says, whichever source saw the end first.
    exits = {
        (r.exit_status, r.exit_signal) for r in run.history[ids["timeout"]] if r.state == "timeout"
    }
    assert exits == {(0, None)}, exits
    assert timeout.walltime_requested_seconds == 60
    assert timeout.walltime_used_seconds is not None
    assert timeout.walltime_used_seconds >= 60
    assert held.state == "completed"
    for task in (1, 2, 3):
        record = run.last(f"{ids['array']}_{task}")
        assert record.state == "completed"
        assert record.array_parent == ids["array"]
    for job_id, records in run.history.items():
        assert all(r.cluster == "collectbus" for r in records), job_id


def test_transitions_seen_across_cycles(run: Run) -> None:
    ids = run.ids
    assert run.cycles >= 3
    assert run.states(ids["held"])[0] == "held"
    assert run.states(ids["held"])[-1] == "completed"
    assert "running" in run.states(ids["ok"])
    assert run.states(ids["timeout"])[-2:] == ["running", "timeout"]
    for job_id in run.history:
        states = run.states(job_id)
        # never back from a final state, never from running back to pending
        assert sum(s in FINAL_JOB_STATES for s in states) <= 1, (job_id, states)
        ranks = [RANK.get(s, 2) for s in states]
        assert ranks == sorted(ranks), (job_id, states)
    # the held job was eligible only once released
    held = run.last(ids["held"])
    first = run.history[ids["held"]][0]
    assert first.eligible_ns is None
    assert held.eligible_ns is not None
    assert held.submit_ns is not None
    assert held.eligible_ns > held.submit_ns


def test_every_cycle_was_a_complete_listing(run: Run) -> None:
    for mark, ours in run.listings:
        assert mark.cluster == "collectbus"
        assert mark.jobs_total is not None
        assert mark.jobs_total >= ours
    # while the jobs ran, the node was busy and the partition held them
    assert run.node_states & {"mixed", "allocated"}
    assert run.busiest_partition >= 1


def test_times_and_wait_times_agree_with_sacct(run: Run) -> None:
    assert len(run.sacct) == 7, sorted(run.sacct)
    for job_id, row in run.sacct.items():
        record = run.last(job_id)
        assert record.submit_ns == int(row["Submit"]) * NS, job_id
        assert record.eligible_ns == int(row["Eligible"]) * NS, job_id
        assert record.start_ns == int(row["Start"]) * NS, job_id
        assert record.end_ns == int(row["End"]) * NS, job_id
        assert record.start_ns is not None
        assert record.submit_ns is not None
        assert record.eligible_ns is not None
        # wait times: start - submit, and start - eligible
        wait = (record.start_ns - record.submit_ns) // NS
        assert wait == int(row["Start"]) - int(row["Submit"]), job_id
        eligible_wait = (record.start_ns - record.eligible_ns) // NS
        assert eligible_wait == int(row["Start"]) - int(row["Eligible"]), job_id
        assert row["State"].split()[0] == record.native_state, job_id
    assert run.sacct[run.ids["fail"]]["ExitCode"] == "3:0"
    held = run.sacct[run.ids["held"]]
    assert int(held["Eligible"]) > int(held["Submit"])  # eligible once released


def test_finished_jobs_from_accounting_agree_with_squeue(run: Run) -> None:
    from_sacct = {j.job_id: j for j in run.finished_from_accounting}
    assert sorted(from_sacct) == sorted(run.sacct)
    for job_id, job in from_sacct.items():
        live = run.last(job_id)
        assert (job.state, job.submit_ns, job.start_ns, job.end_ns) == (
            live.state,
            live.submit_ns,
            live.start_ns,
            live.end_ns,
        ), job_id
        assert job.eligible_ns == live.eligible_ns, job_id
        assert job.array_parent == live.array_parent, job_id
    failed = from_sacct[run.ids["fail"]]
    # sacct --json of 22.05 loses the 3; the collector takes it from sacct's text output
    assert (failed.exit_status, failed.exit_signal) == (3, None)


def test_the_script_reports_the_running_cluster_and_starts_idempotently(
    slurm_env: dict[str, str],
) -> None:
    script = Path(__file__).resolve().parents[2] / "scripts" / "slurm-local.sh"
    printed = _run(slurm_env, str(script), "env").strip()
    if printed != f"SLURM_CONF={slurm_env['SLURM_CONF']}":
        pytest.skip(f"this Slurm was not started by {script.name} with its defaults ({printed})")
    status = _run(slurm_env, str(script), "status")
    assert re.search(r"^node: localhost (idle|mixed|allocated)$", status, re.MULTILINE), status
    if os.geteuid() != 0:
        pytest.skip("starting Slurm needs root")
    again = subprocess.run(
        [str(script), "start"],
        env=slurm_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert again.returncode == 0, again.stderr
    assert "already running" in again.stderr


def _stored_states(run: Run) -> dict[str, list[tuple[str | None, str]]]:
    """The state changes ``job_history`` holds for each of our jobs, in order."""
    store = open_store(run.store_url)
    try:
        c = job_history.c
        with store.jobs.reading() as conn:
            rows = conn.execute(
                select(c.job_id, c.old_value, c.new_value)
                .where(c.field == "state")
                .order_by(c.observed_ns, c.id)
            ).all()
    finally:
        store.close()
    out: dict[str, list[tuple[str | None, str]]] = defaultdict(list)
    for job_id, old, new in rows:
        out[str(job_id)].append((old, str(new)))
    return out


def test_the_store_keeps_each_jobs_transitions(run: Run) -> None:
    stored = _stored_states(run)
    assert sorted(stored) == sorted(run.history)
    ids = run.ids
    # The array's pending remainder (9_[1-3]) is no job: never stored.
    assert not [job_id for job_id in stored if "_[" in job_id]
    for job_id, changes in stored.items():
        seen = run.states(job_id)
        # first seen, then one row per change, exactly as the cycles saw them
        assert changes == list(zip([None, *seen[:-1]], seen, strict=True)), job_id
    held = [new for _, new in stored[ids["held"]]]
    assert held[0] == "held"
    assert held[1] in ("queued", "running")  # released
    assert held[-1] == "completed"
    assert stored[ids["ok"]][-1] == ("running", "completed")
    assert stored[ids["fail"]][-1] == ("running", "failed")
    assert stored[ids["timeout"]][-1] == ("running", "timeout")


def test_analyze_wait_times_agree_with_sacct(run: Run) -> None:
    assert run.store_dir is not None
    result = collectbus(
        "analyze", "wait-times", "--since", "2h", "--by", "queue", "--format", "json",
        cwd=run.store_dir, env=collectbus_env(run.store_dir, run.store_url),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = {row["definition"]: row for row in json.loads(result.stdout)}
    started = [r for r in run.sacct.values() if r["Start"].isdigit()]
    assert len(started) == 7
    for definition, since in (("queued", "Submit"), ("eligible", "Eligible")):
        waits = np.array([int(r["Start"]) - int(r[since]) for r in started], dtype=np.float64)
        row = rows[definition]
        assert (row["queue"], row["jobs"]) == ("debug", len(started)), row
        assert row["mean_s"] == pytest.approx(waits.mean()), definition
        assert (row["min_s"], row["max_s"]) == (waits.min(), waits.max()), definition
        for p in (50, 90, 99):
            assert row[f"p{p}_s"] == pytest.approx(np.percentile(waits, p)), (definition, p)


def _reservations(env: dict[str, str], store: Store, tracked: TrackedStore) -> list[str]:
    """One reservations collection from the real Slurm, stored; the ids it listed."""
    settings = SlurmSettings(timeout_s=30.0)
    collector = SlurmReservationsCollector(settings, runner=LocalRunner(timeout=30.0, env=env))
    ctx = CollectContext(host="h")
    started = time.time_ns()
    records = collector.collect(ctx)
    assert ctx.problems == []
    event = CollectionEvent(
        source=collector.name, host="h", started_ns=started, duration_ns=1, status="ok",
        records=len(records), details=tuple(ctx.details),
    )  # fmt: skip
    tracked.write([*records, event])
    return [r.resv_id for r in records]


def test_reservations_from_the_real_slurm(slurm_env: dict[str, str], tmp_path: Path) -> None:
    """scontrol create reservation: stored with its state; deleted: disappeared, its
    history kept; no reservation at all is an empty listing, not an error."""
    tag = f"cbr{secrets.token_hex(3)}"
    name = f"{tag}_later"
    node = _run(slurm_env, "sinfo", "-h", "-o", "%N").split()[0]
    with open_store(f"sqlite:///{tmp_path / 'r.db'}") as store:
        tracked = TrackedStore(store)
        _run(
            slurm_env, "scontrol", "create", "reservation", f"ReservationName={name}",
            "StartTime=now+1hour", "Duration=00:20:00", "Users=root", f"Nodes={node}",
        )  # fmt: skip
        try:
            assert name in _reservations(slurm_env, store, tracked)
        finally:
            _run(slurm_env, "scontrol", "delete", f"ReservationName={name}")
        listed = _reservations(slurm_env, store, tracked)
        assert name not in listed
        with store.reservations.reading() as conn:
            (row,) = [r for r in read_reservations(conn) if r["resv_id"] == name]
            history = read_reservation_history(conn, resv_id=name)
    assert (row["state"], row["native_state"], row["nodes"]) == ("disappeared", "INACTIVE", node)
    assert row["duration_seconds"] == 1200
    assert row["end_ns"] - row["start_ns"] == 1200 * NS
    assert [(h["old_value"], h["new_value"]) for h in history] == [
        (None, "confirmed"),
        ("confirmed", "disappeared"),
    ]
    if not listed:  # no other reservation on this cluster: the real "none" output
        shown = _run(slurm_env, "scontrol", "show", "reservation", "-o")
        assert shown.strip() == "No reservations in the system"
