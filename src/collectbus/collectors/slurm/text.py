"""Pure parsers of Slurm's text output, where it has no JSON (or a site has no JSON plugin).

- ``scontrol show partition -o`` -> :class:`~collectbus.records.QueueRecord`: Slurm 22.05 has
  no JSON for partitions (``sinfo --json`` lists nodes only, ``scontrol --json`` does not exist);
- ``scontrol show job -o`` and the ``jobcomp/filetxt`` log -> :class:`~collectbus.records.JobRecord`:
  both are one job per line of ``Key=Value`` words;
- ``sacct -c -P`` (the jobcomp log read through sacct, when there is no accounting
  database) and ``squeue -o '%i|%j|...'`` -> :class:`~collectbus.records.JobRecord`.

Times are local time without a zone (``2026-11-24T05:19:22``), read in the
``tz`` given, or epoch seconds when ``SLURM_TIME_FORMAT=%s`` was set.

``sacct -c`` prints the job's start time in its Submit column (Slurm 22.05;
the jobcomp log itself has the right ``SubmitTime``), so its records have
``submit_ns=None``; Eligible is right there.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, tzinfo

from collectbus.collectors.slurm.states import (
    REQUEUED_RUN,
    decode_exit_pair,
    duration_seconds,
    expand_hostlist,
    job_exit,
    job_state,
    memory_bytes,
    ran,
    substate,
    text_time_ns,
    tres_map,
)
from collectbus.errors import ParseError
from collectbus.records import JobRecord, QueueRecord
from collectbus.values import fit_int64

__all__ = [
    "parse_jobcomp_filetxt",
    "parse_keyvalue_lines",
    "parse_pipe_table",
    "parse_sacct_completion",
    "parse_sacct_exit_codes",
    "parse_scontrol_jobs",
    "parse_scontrol_partitions",
    "parse_squeue_pipe",
    "with_job_counts",
]

SCHEDULER = "slurm"

# A key starts a line or follows a blank; values may hold blanks (OS=Linux 6.1 #1 SMP).
_KEY = re.compile(r"(?:^|(?<=\s))([A-Za-z][\w:/.]*)=")


def parse_keyvalue_lines(data: bytes, source: str) -> list[dict[str, str]]:
    """One dict per non-empty line of ``Key=Value`` words (``scontrol show ... -o``)."""
    rows = []
    for lineno, line in enumerate(_lines(data, source), 1):
        if not line.strip():
            continue
        matches = list(_KEY.finditer(line))
        if not matches or line[: matches[0].start()].strip():
            raise ParseError(source, lineno, f"not a line of Key=Value words: {line[:60]!r}")
        row = {}
        for m, following in zip(matches, [*matches[1:], None], strict=True):
            end = following.start() if following is not None else len(line)
            row[m.group(1)] = line[m.end() : end].strip()
        rows.append(row)
    return rows


def parse_pipe_table(data: bytes, source: str) -> list[dict[str, str]]:
    """Rows of ``|``-separated text with a header line (``sacct -P``, ``squeue -o``)."""
    lines = [line for line in _lines(data, source) if line.strip()]
    if not lines:
        return []
    header = lines[0].split("|")
    rows = []
    for lineno, line in enumerate(lines[1:], 2):
        fields = line.split("|")
        if len(fields) != len(header):
            raise ParseError(
                source, lineno, f"{len(fields)} fields where the header has {len(header)}"
            )
        rows.append(dict(zip(header, fields, strict=True)))
    return rows


# -------------------------------------------------------------- partitions


def parse_scontrol_partitions(
    data: bytes,
    *,
    source: str = "scontrol show partition -o",
    cluster: str,
    observed_ns: int,
    refused: list[str] | None = None,
) -> list[QueueRecord]:
    """One QueueRecord per partition, without job counts (see :func:`with_job_counts`).

    A line without a ``PartitionName`` is refused, named in ``refused``
    (``line 3: no PartitionName``); without ``refused`` it is a ParseError.

    ``State`` (``man scontrol``): UP takes and starts jobs; DOWN takes them but
    starts none; DRAIN starts the queued ones but takes no new ones; INACTIVE
    does neither. ``enabled`` is "takes new jobs" and ``started`` "starts jobs",
    as PBS means them.
    """
    records = []
    for i, row in enumerate(parse_keyvalue_lines(data, source)):
        name = row.get("PartitionName")
        if not name:
            if refused is None:
                raise ParseError(source, i + 1, "no PartitionName")
            refused.append(f"line {i + 1}: no PartitionName")
            continue
        state = row.get("State", "").upper()
        records.append(
            QueueRecord(
                cluster=cluster,
                scheduler=SCHEDULER,
                queue=name,
                observed_ns=observed_ns,
                enabled=state in ("UP", "DOWN") if state else None,
                started=state in ("UP", "DRAIN") if state else None,
                raw_json=json.dumps(row, sort_keys=True, separators=(",", ":")),
            )
        )
    return records


def with_job_counts(queues: list[QueueRecord], jobs: list[JobRecord]) -> list[QueueRecord]:
    """The partitions with the count of live jobs in each, per neutral and native state.

    A pending job submitted to several partitions (``-p a,b``) counts in each.
    Finished jobs (still listed by ``squeue`` until ``MinJobAge``) are not counted.
    """
    out = []
    for queue in queues:
        mine = [
            j
            for j in jobs
            if queue.queue in (j.queue or "").split(",")
            and j.state not in ("completed", "failed", "cancelled", "timeout")
        ]
        native: dict[str, int] = {}
        for job in mine:
            native[job.native_state] = native.get(job.native_state, 0) + 1
        out.append(
            replace(
                queue,
                jobs_total=len(mine),
                jobs_queued=sum(j.state == "queued" for j in mine),
                jobs_running=sum(j.state == "running" for j in mine),
                jobs_held=sum(j.state == "held" for j in mine),
                state_counts=tuple(sorted(native.items())),
            )
        )
    return out


# --------------------------------------------------------------------- jobs


def parse_scontrol_jobs(
    data: bytes,
    *,
    source: str = "scontrol show job -o",
    cluster: str,
    observed_ns: int,
    tz: tzinfo = UTC,
) -> list[JobRecord]:
    """Jobs from ``scontrol show job -o``."""
    rows = parse_keyvalue_lines(data, source)
    return [_keyvalue_job(row, source, i, cluster, observed_ns, tz) for i, row in enumerate(rows)]


def parse_jobcomp_filetxt(
    data: bytes,
    *,
    source: str = "jobcomp log",
    cluster: str,
    observed_ns: int,
    tz: tzinfo = UTC,
) -> list[JobRecord]:
    """Finished jobs from a ``JobCompType=jobcomp/filetxt`` log (``JobCompLoc``): the
    same ``Key=Value`` lines as ``scontrol show job -o``."""
    return parse_scontrol_jobs(data, source=source, cluster=cluster, observed_ns=observed_ns, tz=tz)


def _keyvalue_job(
    row: Mapping[str, str], source: str, index: int, cluster: str, observed_ns: int, tz: tzinfo
) -> JobRecord:
    try:
        job_id = row["JobId"]
        native = row["JobState"]
        array_job, task = row.get("ArrayJobId"), row.get("ArrayTaskId")
        if array_job and task:
            job_id = f"{array_job}_{task}"
        reason = row.get("Reason")
        state = job_state(native, reason)
        exit_status, exit_signal = job_exit(
            native, state, *decode_exit_pair(row.get("ExitCode", ""))
        )
        tres = tres_map(row.get("TRES") or row.get("Tres") or "")
        start = text_time_ns(row.get("StartTime", ""), tz)
        end = text_time_ns(row.get("EndTime", ""), tz)
        finished = state in ("completed", "failed", "cancelled", "timeout")
        if state in ("queued", "held") or ("NodeList" in row and not ran(row["NodeList"])):
            start = None  # an estimate, or start = end of a job that never ran
        if not finished:
            end = None  # a projection
        return JobRecord(
            cluster=cluster,
            scheduler=SCHEDULER,
            job_id=job_id,
            submit_ns=text_time_ns(row.get("SubmitTime", ""), tz),
            observed_ns=observed_ns,
            state=state,
            native_state=native,
            substate=substate(reason),
            name=_value(row.get("JobName") or row.get("Name")),
            user=_user(row.get("UserId", "")),
            account=_value(row.get("Account")),
            queue=_value(row.get("Partition")),
            priority=_number(row.get("Priority")),
            array_parent=array_job or None,
            exec_hosts=expand_hostlist(row.get("NodeList", "")),
            nodes_requested=_number(row.get("NumNodes") or row.get("NodeCnt")),
            cpus_requested=_number(row.get("NumCPUs") or row.get("ProcCnt")),
            mem_requested_bytes=memory_bytes(tres["mem"]) if "mem" in tres else None,
            walltime_requested_seconds=duration_seconds(row.get("TimeLimit", "")),
            walltime_used_seconds=_used(start, end, observed_ns, finished),
            eligible_ns=text_time_ns(row.get("EligibleTime", ""), tz),
            start_ns=start,
            end_ns=end,
            exit_status=exit_status,
            exit_signal=exit_signal,
            raw_json=json.dumps(row, sort_keys=True, separators=(",", ":")),
        )
    except (KeyError, ValueError, OverflowError, RecursionError) as err:
        raise ParseError(source, index + 1, _describe(err)) from err


def parse_sacct_completion(
    data: bytes,
    *,
    source: str = "sacct -c -P",
    cluster: str,
    observed_ns: int,
    tz: tzinfo = UTC,
) -> list[JobRecord]:
    """Finished jobs from ``sacct -c -P -o ...`` with a header (the jobcomp log).

    Its Submit column holds the start time, so ``submit_ns`` is None.
    """
    records = []
    for i, row in enumerate(parse_pipe_table(data, source)):
        try:
            native = row["State"]
            state = job_state(native, row.get("Reason"))
            if native.strip() and native.split()[0].upper() == "REQUEUED":
                state = REQUEUED_RUN
            start = text_time_ns(row.get("Start", ""), tz)
            if "NodeList" in row and not ran(row["NodeList"]):
                start = None  # Slurm sets start = end for a job that never ran
            end = text_time_ns(row.get("End", ""), tz)
            exit_status, exit_signal = job_exit(
                native, state, *decode_exit_pair(row.get("ExitCode", ""))
            )
            elapsed = row.get("ElapsedRaw", "")
            records.append(
                JobRecord(
                    cluster=cluster,
                    scheduler=SCHEDULER,
                    job_id=row.get("JobID") or row["JobIDRaw"],
                    submit_ns=None,
                    observed_ns=observed_ns,
                    state=state,
                    native_state=native.split()[0] if native.strip() else native,
                    substate=substate(row.get("Reason")),
                    name=_value(row.get("JobName")),
                    user=_user(row.get("User", "")),
                    account=_value(row.get("Account")),
                    queue=_value(row.get("Partition")),
                    exec_hosts=expand_hostlist(row.get("NodeList", "")),
                    nodes_requested=_number(row.get("NNodes")),
                    cpus_requested=_number(row.get("NCPUS") or row.get("AllocCPUS")),
                    walltime_requested_seconds=duration_seconds(row.get("Timelimit", "")),
                    walltime_used_seconds=_number(elapsed),
                    eligible_ns=text_time_ns(row.get("Eligible", ""), tz),
                    start_ns=start,
                    end_ns=end,
                    exit_status=exit_status,
                    exit_signal=exit_signal,
                    raw_json=json.dumps(row, sort_keys=True, separators=(",", ":")),
                )
            )
        except (KeyError, ValueError, OverflowError, RecursionError) as err:
            raise ParseError(source, i + 2, _describe(err)) from err
    return records


def parse_sacct_exit_codes(
    data: bytes, *, source: str = "sacct -P -o JobID,Submit,ExitCode", tz: tzinfo = UTC
) -> dict[tuple[str, int | None], tuple[int | None, int | None]]:
    """(exit status, signal) by (job id, submit time) from ``sacct -X -P -o JobID,Submit,ExitCode``.

    ``sacct --json`` of Slurm 22.05 loses a non-zero exit status; its text
    output keeps it (``3:0``).
    """
    codes = {}
    for i, row in enumerate(parse_pipe_table(data, source)):
        try:
            key = (row["JobID"], text_time_ns(row["Submit"], tz))
            codes[key] = decode_exit_pair(row["ExitCode"])
        except (KeyError, ValueError, OverflowError, RecursionError) as err:
            raise ParseError(source, i + 2, _describe(err)) from err
    return codes


def parse_squeue_pipe(
    data: bytes,
    *,
    source: str = "squeue -o",
    cluster: str,
    observed_ns: int,
    tz: tzinfo = UTC,
) -> list[JobRecord]:
    """Jobs from ``squeue -t all -o '%i|%j|%T|%r|%V|%S|%e|%l|%M|%C|%D|%P|%u|%a|%q'``."""
    records = []
    for i, row in enumerate(parse_pipe_table(data, source)):
        try:
            native = row["STATE"]
            state = job_state(native, row.get("REASON"))
            start = text_time_ns(row.get("START_TIME", ""), tz)
            end = text_time_ns(row.get("END_TIME", ""), tz)
            finished = state in ("completed", "failed", "cancelled", "timeout")
            job_id = row["JOBID"]
            parent = job_id.partition("_")[0] if "_" in job_id else None
            records.append(
                JobRecord(
                    cluster=cluster,
                    scheduler=SCHEDULER,
                    job_id=job_id,
                    submit_ns=text_time_ns(row.get("SUBMIT_TIME", ""), tz),
                    observed_ns=observed_ns,
                    state=state,
                    native_state=native,
                    substate=substate(row.get("REASON")),
                    name=_value(row.get("NAME")),
                    user=_value(row.get("USER")),
                    account=_value(row.get("ACCOUNT")),
                    queue=_value(row.get("PARTITION")),
                    array_parent=parent,
                    nodes_requested=_number(row.get("NODES")),
                    cpus_requested=_number(row.get("CPUS")),
                    walltime_requested_seconds=duration_seconds(row.get("TIME_LIMIT", "")),
                    walltime_used_seconds=duration_seconds(row.get("TIME", ""), bare_unit_s=1),
                    start_ns=start,
                    end_ns=end if finished else None,
                    raw_json=json.dumps(row, sort_keys=True, separators=(",", ":")),
                )
            )
        except (KeyError, ValueError, OverflowError, RecursionError) as err:
            raise ParseError(source, i + 2, _describe(err)) from err
    return records


# ------------------------------------------------------------- internals


def _lines(data: bytes, source: str) -> list[str]:
    try:
        return data.decode("utf-8").splitlines()
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise ParseError(source, line, f"not UTF-8 at byte {err.start}") from err


def _value(text: str | None) -> str | None:
    if text is None or text in ("", "(null)", "N/A"):
        return None
    return text


def _user(text: str) -> str | None:
    """``root(0)`` -> ``root``."""
    return _value(text.partition("(")[0])


def _number(text: str | None) -> int | None:
    """A count; None when absent, not a number, or out of range (:mod:`collectbus.values`)."""
    if not text or not (text.isascii() and text.isdigit()) or len(text) > 19:
        return None
    return fit_int64(int(text))


def _used(start: int | None, end: int | None, observed_ns: int, finished: bool) -> int | None:
    if start is None:
        return None
    until = end if finished and end is not None else observed_ns
    return max(0, (until - start) // 1_000_000_000)


def _describe(err: Exception) -> str:
    if isinstance(err, KeyError):
        return f"missing column {err.args[0]!r}"
    return str(err)
