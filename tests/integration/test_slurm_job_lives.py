"""Every kind of job life on the real Slurm, against Slurm's own accounting.

A dependency chain (afterok; afternotok, then cancelled), a job cancelled
while pending, one cancelled while running, a requeued job, an array with a
concurrency limit and a failing task, a job killed by signal 9, one that
exits 137 and one past its time limit are submitted. The collection pipeline
(collector, bus, store) runs every second and is stopped for 20 s in the
middle, while jobs change, then started again on the same store. At the end,
every stored job equals ``sacct -D --json`` (the oracle): one row per run,
with its final state, exit code and signal, and its submit, eligible, start
and end times; and ``analyze wait-times`` equals the waits recomputed from it.

How the oracle is read (Slurm 22.05): a job that ended without nodes never
ran, though Slurm gives it start = end, so its start is None; ``sacct
--json`` reports SUCCESS/0 for a job that failed with a non-zero status, whose
status is then read from the jobcomp log this cluster keeps (``sacct -c``),
which has it whole (137, where ``sacct``'s text prints 9).
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from collectbus.bus import CollectionBus
from collectbus.clock import SystemClock
from collectbus.collectors.base import CollectContext
from collectbus.collectors.run import LocalRunner
from collectbus.collectors.slurm.collector import SlurmJobsCollector, SlurmSettings
from collectbus.collectors.slurm.parse import raw_job_id
from collectbus.pipeline.sink import StoreSink
from collectbus.records import FINAL_JOB_STATES, JobRecord
from collectbus.store import open as open_store
from collectbus.store.schema import job_history, jobs
from tests.integration.cli_helpers import collectbus, collectbus_env
from tests.integration.test_slurm import _run, _submit, slurm_env

pytestmark = [pytest.mark.slurm, pytest.mark.slow]
__all__ = ["slurm_env"]

NS = 1_000_000_000
DEADLINE_S = 420  # a requeued job waits 2 minutes before its next run
PAUSE_S = 20
GRACE_S = 15  # cycles after Slurm is done, for the last ends to be collected
NEVER_RAN = ("None assigned", "", None)

Key = tuple[str, int]  # (job id as collectbus shows it, submit seconds)
Facts = dict[str, object]


class Pipeline:
    """The collection pipeline of a daemon: the jobs collector on a bus, into a store."""

    def __init__(
        self, url: str, env: dict[str, str], tag: str, keep: Callable[[JobRecord], bool]
    ) -> None:
        self.store = open_store(url)
        self.sink = StoreSink(
            self.store, clock=SystemClock(), compact_after_s=3600, compact_every_s=3600
        )
        settings = SlurmSettings(timeout_s=30, sacct_lookback_s=3600)
        self.bus = CollectionBus(host="test")
        self.bus.add(
            SlurmJobsCollector(settings, runner=LocalRunner(timeout=30, env=env)),
            interval=3600,
            timeout=120,
        )
        self.keep = keep
        self.tag = tag
        self.raw_ids: set[str] = set()

    def cycle(self) -> list[JobRecord]:
        result = self.bus.collect_now("slurm-jobs")
        assert result.event.status == "ok", result.event.error
        self.raw_ids |= {
            raw_job_id(r)
            for r in result.records
            if isinstance(r, JobRecord) and (r.name or "").startswith(f"{self.tag}-")
        }
        mine = [r for r in result.records if isinstance(r, JobRecord) and self.keep(r)]
        others = tuple(r for r in result.records if not isinstance(r, JobRecord))
        self.sink(replace(result, records=(*others, *mine)))
        assert self.sink.pending == 0, self.sink.last_error
        return mine

    def stop(self) -> None:
        self.bus.stop()
        self.store.close()


def _state(records: list[JobRecord], job_id: str) -> str | None:
    found = [r.native_state for r in records if r.job_id == job_id]
    return found[-1] if found else None


def _oracle(env: dict[str, str], parents: list[str], tag: str) -> dict[Key, Facts]:
    """Each run of our jobs as ``sacct -D --json`` reports it."""
    doc = json.loads(_run(env, "sacct", "-D", "--json", "-j", ",".join(parents)))
    whole = _jobcomp_exit_codes(env, parents)
    out: dict[Key, Facts] = {}
    for job in doc["jobs"]:
        if not str(job["name"]).startswith(f"{tag}-"):
            continue
        array = job["array"]
        job_id = f"{array['job_id']}_{array['task_id']}" if array["job_id"] else str(job["job_id"])
        times = job["time"]
        state = job["state"]["current"]
        code = job["exit_code"]
        if code["status"] == "SIGNALED":
            exit_pair: tuple[int | None, int | None] = (None, code["signal"]["signal_id"])
        elif code["return_code"] == 0 and state == "FAILED":
            exit_pair = whole[str(job["job_id"])]  # 22.05's JSON loses the status
        else:
            exit_pair = (code["return_code"], None)
        ran = job["nodes"] not in NEVER_RAN
        out[(job_id, times["submission"])] = {
            "native_state": state,
            "exit": exit_pair,
            "submit": times["submission"],
            "eligible": times["eligible"] or None,
            "start": times["start"] if ran else None,
            "end": times["end"] or None,
        }
    return out


def _jobcomp_exit_codes(
    env: dict[str, str], parents: list[str]
) -> dict[str, tuple[int | None, int | None]]:
    """Exit codes by raw job id from the jobcomp log (``sacct -c``), which keeps them whole."""
    out = _run(env, "sacct", "-c", "-P", "-S", "now-2hours", "-o", "JobIDRaw,ExitCode")
    codes: dict[str, tuple[int | None, int | None]] = {}
    for line in out.splitlines()[1:]:
        raw, _, pair = line.partition("|")
        status, _, signal = pair.partition(":")
        codes[raw] = (None, int(signal)) if int(signal) else (int(status), None)
    return codes


def _stored(url: str, tag: str, raw_ids: set[str]) -> dict[Key, Facts]:
    store = open_store(url, migrate=False)
    try:
        c = jobs.c
        with store.jobs.reading() as conn:
            rows = conn.execute(
                select(
                    c.job_id,
                    c.state,
                    c.native_state,
                    c.exit_status,
                    c.exit_signal,
                    c.submit_ns,
                    c.eligible_ns,
                    c.start_ns,
                    c.end_ns,
                )
            ).all()
    finally:
        store.close()
    out: dict[Key, Facts] = {}
    for row in rows:
        secs = [None if v is None else int(v) // NS for v in row[5:]]
        assert secs[0] is not None
        out[(str(row.job_id), secs[0])] = {
            "state": row.state,
            "native_state": str(row.native_state).split()[0],
            "exit": (row.exit_status, row.exit_signal),
            "submit": secs[0],
            "eligible": secs[1],
            "start": secs[2],
            "end": secs[3],
        }
    return out


def test_every_job_life_equals_slurm_accounting(slurm_env: dict[str, str], tmp_path: Path) -> None:
    env = slurm_env
    began = time.monotonic()
    tag = f"cbl{secrets.token_hex(3)}"
    sub = _submit
    ids = {"chain_a": sub(env, tag, "chain_a", "--wrap", "sleep 3")}
    ids["chain_ok"] = sub(env, tag, "chain_ok", "-d", f"afterok:{ids['chain_a']}", "--wrap", "true")
    ids["chain_notok"] = sub(
        env, tag, "chain_notok", "-d", f"afternotok:{ids['chain_a']}", "--wrap", "true"
    )
    ids["pending_cancel"] = sub(env, tag, "pending_cancel", "--begin=now+600", "--wrap", "true")
    ids["running_cancel"] = sub(env, tag, "running_cancel", "--wrap", "sleep 300")
    ids["requeue"] = sub(env, tag, "requeue", "--wrap", "sleep 6")
    ids["array"] = sub(
        env, tag, "array", "--array=1-5%2",
        "--wrap", 'sleep 2; [ "$SLURM_ARRAY_TASK_ID" = 3 ] && exit 2; exit 0',
    )  # fmt: skip
    ids["sig9"] = sub(env, tag, "sig9", "--wrap", "kill -9 $$")
    ids["exit137"] = sub(env, tag, "exit137", "--wrap", "exit 137")
    ids["timeout"] = sub(env, tag, "timeout", "--time=1", "--wrap", "sleep 300")
    parents = list(ids.values())
    url = f"sqlite:///{tmp_path / 'collectbus.db'}"
    raw_ids: set[str] = set(parents)

    def ours(record: JobRecord) -> bool:
        # Our jobs by name, and any record of Slurm under one of their raw ids
        # (an array task's accounting record has its raw id alone at first).
        return (record.name or "").startswith(f"{tag}-") or raw_job_id(record) in raw_ids

    done_actions: set[str] = set()
    pipeline = Pipeline(url, env, tag, ours)
    pipeline.raw_ids = raw_ids
    paused = 0.0
    slurm_done = 0.0
    try:
        while True:
            seen = {r.job_id: r for r in pipeline.cycle()}
            if "pending_cancel" not in done_actions:
                _run(env, "scancel", ids["pending_cancel"])
                done_actions.add("pending_cancel")
            # Cancelled, and requeued, once collectbus has seen them run a while.
            for role, act in (("running_cancel", "scancel"), ("requeue", "requeue")):
                record = seen.get(ids[role])
                if role in done_actions or record is None or record.state != "running":
                    continue
                if record.start_ns is not None and time.time_ns() - record.start_ns > 2 * NS:
                    argv = ["scancel"] if act == "scancel" else ["scontrol", "requeue"]
                    _run(env, *argv, ids[role])
                    done_actions.add(role)
            notok = _run(env, "squeue", "-h", "-j", ids["chain_notok"], "-o", "%r").strip()
            if "chain_notok" not in done_actions and notok == "DependencyNeverSatisfied":
                _run(env, "scancel", ids["chain_notok"])
                done_actions.add("chain_notok")
            if not paused and time.monotonic() - began > 12:
                # The daemon stops for 20 s while jobs start, end and requeue.
                pipeline.stop()
                time.sleep(PAUSE_S)
                paused = time.monotonic()
                pipeline = Pipeline(url, env, tag, ours)
            live = _run(env, "squeue", "-h", "-o", "%i %T")
            mine = [line for line in live.splitlines() if line.split()[0].split("_")[0] in parents]
            unfinished = [line for line in mine if line.split()[1] not in _FINAL_NATIVE]
            if not unfinished and len(done_actions) == 4 and paused:
                oracle = _oracle(env, parents, tag)
                if all(f["end"] for f in oracle.values()):
                    # Slurm is done: a few more cycles for collectbus to see it
                    slurm_done = slurm_done or time.monotonic()
                    if _settled(url, tag, raw_ids, oracle):
                        break
                    if time.monotonic() - slurm_done > GRACE_S:
                        break  # the comparison below says what differs
            if time.monotonic() - began > DEADLINE_S:
                pytest.fail(f"jobs not final after {DEADLINE_S} s: {mine}, {done_actions}")
            time.sleep(1)
    finally:
        pipeline.stop()
        left = [
            line.split()[0]
            for line in _run(env, "squeue", "-h", "-o", "%i %j").splitlines()
            if f" {tag}-" in line
        ]
        if left:
            _run(env, "scancel", *left)
    elapsed = time.monotonic() - began
    stored = _stored(url, tag, raw_ids)
    print(f"job lives: {len(oracle)} runs of {len(parents)} submissions in {elapsed:.0f} s")
    for key in sorted(oracle):
        print(f"  {key[0]:>8} {oracle[key]['native_state']:<10} oracle {oracle[key]}")
    differences = [
        f"{key}: stored {stored.get(key)}, sacct {facts}"
        for key, facts in sorted(oracle.items())
        if key not in stored
        or {k: stored[key][k] for k in facts} != facts
        or stored[key]["state"] not in FINAL_JOB_STATES
    ]
    differences += [f"{key}: stored {row}, not in sacct" for key, row in stored.items()
                    if key not in oracle]  # fmt: skip
    assert not differences, "\n".join(differences)
    # the kinds of lives that were there
    requeued = [k for k, f in oracle.items() if f["native_state"] == "REQUEUED"]
    assert len(requeued) == 1
    assert sum(k[0] == ids["requeue"] for k in oracle) == 2
    assert oracle[_key(oracle, ids["pending_cancel"])]["start"] is None
    assert oracle[_key(oracle, ids["exit137"])]["exit"] == (137, None)
    assert oracle[_key(oracle, ids["sig9"])]["exit"] == (None, 9)
    assert oracle[_key(oracle, f"{ids['array']}_3")]["exit"] == (2, None)
    assert oracle[_key(oracle, ids["timeout"])]["native_state"] == "TIMEOUT"
    _accounting_alone_reads_the_same(env, tag, stored)
    # every life seen as it happened: no job went missing, none came twice
    changes = _state_changes(url)
    for (job_id, _), states in changes.items():
        assert "disappeared" not in states, (job_id, states)
    running_cancel = changes[_key(oracle, ids["running_cancel"])]
    assert running_cancel[-2:] == ["running", "cancelled"], running_cancel
    _wait_times_equal_oracle(tmp_path, url, oracle)


def _accounting_alone_reads_the_same(
    env: dict[str, str], tag: str, stored: dict[Key, Facts]
) -> None:
    """A collector that never saw the jobs in squeue reads the same facts from
    accounting, but for a status of 128 or more: sacct's text prints it less 128."""
    collector = SlurmJobsCollector(
        SlurmSettings(timeout_s=30, sacct_lookback_s=3600), runner=LocalRunner(timeout=30, env=env)
    )
    ctx = CollectContext(host="test")
    finished = [j for j in collector.finished_jobs(ctx) if (j.name or "").startswith(f"{tag}-")]
    assert ctx.problems == []
    read: dict[Key, Facts] = {}
    for job in finished:
        assert job.submit_ns is not None
        times = [
            None if t is None else t // NS for t in (job.eligible_ns, job.start_ns, job.end_ns)
        ]
        read[(job.job_id, job.submit_ns // NS)] = {
            "state": job.state,
            "exit": (job.exit_status, job.exit_signal),
            "eligible": times[0],
            "start": times[1],
            "end": times[2],
        }
    assert sorted(read) == sorted(stored)
    for key, facts in read.items():
        expected = {k: stored[key][k] for k in facts}
        status, signal = expected["exit"]  # type: ignore[misc]
        if isinstance(status, int) and status >= 128:
            expected["exit"] = (status - 128, signal)
        assert facts == expected, key


def _state_changes(url: str) -> dict[Key, list[str]]:
    store = open_store(url, migrate=False)
    try:
        c = job_history.c
        with store.jobs.reading() as conn:
            rows = conn.execute(
                select(c.job_id, c.submit_ns, c.new_value)
                .where(c.field == "state")
                .order_by(c.observed_ns, c.id)
            ).all()
    finally:
        store.close()
    out: dict[Key, list[str]] = {}
    for job_id, submit_ns, new in rows:
        out.setdefault((str(job_id), int(submit_ns) // NS), []).append(str(new))
    return out


_FINAL_NATIVE = frozenset(
    {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED"}
)


def _key(oracle: dict[Key, Facts], job_id: str) -> Key:
    (key,) = [k for k in oracle if k[0] == job_id]
    return key


def _settled(url: str, tag: str, raw_ids: set[str], oracle: dict[Key, Facts]) -> bool:
    """Every run of the oracle is stored final (the last cycle may have come first)."""
    stored = _stored(url, tag, raw_ids)
    return all(key in stored and stored[key]["state"] in FINAL_JOB_STATES for key in oracle)


def _wait_times_equal_oracle(tmp_path: Path, url: str, oracle: dict[Key, Facts]) -> None:
    result = collectbus(
        "analyze", "wait-times", "--since", "2h", "--format", "json",
        cwd=tmp_path, env=collectbus_env(tmp_path, url),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = {row["definition"]: row for row in json.loads(result.stdout)}
    started = [f for f in oracle.values() if f["start"] is not None]
    for definition, since in (("queued", "submit"), ("eligible", "eligible")):
        waits = np.array(
            [int(str(f["start"])) - int(str(f[since])) for f in started], dtype=np.float64
        )
        row = rows[definition]
        print(f"  wait-times {definition}: {row} (oracle mean {waits.mean():.3f} of {len(waits)})")
        assert row["jobs"] == len(started), row
        assert row["mean_s"] == pytest.approx(waits.mean()), definition
        assert (row["min_s"], row["max_s"]) == (waits.min(), waits.max()), definition
        for p in (50, 90, 99):
            assert row[f"p{p}_s"] == pytest.approx(np.percentile(waits, p)), (definition, p)
    assert min(rows["eligible"]["min_s"], rows["queued"]["min_s"]) >= 0
