"""Pure parsers of Slurm's JSON output: bytes in, records out.

- ``squeue --json``  -> :class:`~collectbus.records.JobRecord` (pending, running, and
  finished jobs still within ``MinJobAge``);
- ``sinfo --json``   -> :class:`~collectbus.records.NodeRecord` (Slurm 22.05 lists nodes only);
- ``sacct --json``   -> :class:`~collectbus.records.JobRecord` from the accounting database.

Facts of Slurm 22.05 (OpenAPI plugin v0.0.38) that the parsers rely on:

- times are epoch seconds, and 0 (or null) means unset;
- ``exit_code`` in ``squeue --json`` is the raw wait status: 768 is exit 3, 15 is SIGTERM;
- ``sacct --json`` gives ``exit_code`` as ``{"status", "return_code", "signal"}``, and
  reports ``SUCCESS``/0 for a job that exited 3 (FAILED). A FAILED job with a zero
  status therefore gets ``exit_status=None`` (not known), never 0;
- ``time_limit`` is minutes, null when unlimited;
- ``squeue --json`` and ``sinfo --json`` ignore ``-t``, ``-u`` and ``-j``: filter the records
  with :func:`collectbus.collectors.slurm.filters.filter_jobs`;
- ``sacct --json`` that finds no job reports the error 9003 "Nothing found" (exit status 0),
  which is an empty answer, not a failure.

Job ids are Slurm's own display form: ``"12"``; an array task ``"9_3"`` (with
``array_parent="9"``); the array's pending remainder ``"9_[4-10]"``, which
the jobs collector leaves out (:func:`is_array_remainder`); a
heterogeneous component ``"20+1"``. Start, end and exit codes follow one rule
for every source (the Slurm README, "Job lives"): a job that never ran has no
start, a live job no end, and a job Slurm ended exit 0. A job is identified by
``(cluster, job_id, submit_ns)``, since a clean start of slurmctld reuses ids.

Malformed JSON raises :class:`~collectbus.errors.ParseError` naming the command
and the line and column: a payload that cannot be parsed at all costs the
whole output. One item (a job, a node) that cannot be built is that item's
problem: given a ``refused`` list, a parser skips it and names it there with
the reason (``job 61: missing key 'job_state'``; ``jobs[3]`` when even its id
cannot be read), and the collector reports it and marks its listing partial.
Without a ``refused`` list, such an item is a ParseError. A number no column
can hold (past a signed 64-bit integer, NaN, an infinity:
:mod:`collectbus.values`), or a product of one (megabytes as bytes, minutes as
seconds) that passes a signed 64-bit integer, is None, named by item and
field in the ``replaced`` list a parser is given (``job 61: time_limit``,
``job 7: time.limit``), which the collector puts in the collection's details.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypeGuard, TypeVar

from collectbus.clock import NS_PER_S
from collectbus.collectors.slurm.states import (
    REQUEUED_RUN,
    decode_wait_status,
    epoch_ns,
    expand_hostlist,
    job_exit,
    job_state,
    memory_bytes,
    node_state,
    ran,
    substate,
    tres_int,
    tres_map,
)
from collectbus.errors import ParseError
from collectbus.records import JobRecord, NodeRecord
from collectbus.values import fits_int64

__all__ = [
    "is_array_remainder",
    "load_json",
    "parse_sacct_json",
    "parse_sinfo_json",
    "parse_squeue_json",
    "raw_job_id",
]

JsonObject = Mapping[str, object]
T = TypeVar("T")
MIB = 1 << 20
SCHEDULER = "slurm"


def load_json(data: bytes, source: str, key: str) -> tuple[JsonObject, list[JsonObject]]:
    """The whole document and its list under ``key``; ParseError if either is malformed.

    A document whose ``errors`` list is not empty (Slurm reports a failed query
    there, with exit status 0 at times) is an error too.
    """
    try:
        doc = json.loads(data)
    except json.JSONDecodeError as err:
        raise ParseError(
            source, err.lineno, f"invalid JSON at column {err.colno} (byte {err.pos}): {err.msg}"
        ) from err
    except UnicodeDecodeError as err:
        raise ParseError(source, None, f"not UTF-8 at byte {err.start}") from err
    except RecursionError as err:
        raise ParseError(source, None, "invalid JSON: nested too deeply") from err
    except ValueError as err:  # an integer too long for int()
        raise ParseError(source, None, f"invalid JSON: {str(err)[:120]}") from err
    if not _is_object(doc):
        raise ParseError(source, None, f"expected a JSON object, got {type(doc).__name__}")
    errors = doc.get("errors")
    if isinstance(errors, list):
        errors = [e for e in errors if not _nothing_found(e)]
        if errors:
            raise ParseError(source, None, f"Slurm reported errors: {_one_line(errors[0])}")
    items = doc.get(key)
    if not isinstance(items, list):
        raise ParseError(source, None, f"no {key!r} list in the document")
    for i, item in enumerate(items):
        if not _is_object(item):
            raise ParseError(source, None, f"{key}[{i}] is not an object")
    return doc, list(items)


#: What building one item may raise when the item is malformed: that item is refused.
BAD_ITEM = (KeyError, TypeError, ValueError, OverflowError, IndexError, RecursionError)


def _each(
    items: list[JsonObject],
    source: str,
    key: str,
    build: Callable[[JsonObject], T],
    refused: list[str] | None,
) -> list[T]:
    """``build`` of every item; a malformed one is named in ``refused`` and skipped.

    Without ``refused`` a malformed item is a ParseError naming it.
    """
    records = []
    for i, item in enumerate(items):
        label = _label(key, i, item)
        token = _ITEM.set(label)
        try:
            records.append(build(item))
        except BAD_ITEM as err:
            if refused is None:
                raise ParseError(source, None, f"{label}: {_describe(err)}") from err
            refused.append(f"{label}: {_describe(err)}"[:200])
        finally:
            _ITEM.reset(token)
    return records


def _label(key: str, index: int, item: JsonObject) -> str:
    """How an item is named: ``job 61``, ``node cn01``, else by position (``jobs[3]``)."""
    if key == "nodes":
        name = item.get("name")
        if isinstance(name, str) and name and len(name) <= 64 and name.isprintable():
            return f"node {name}"
    else:
        ident = item.get("job_id")
        if isinstance(ident, int) and not isinstance(ident, bool) and 0 <= ident < 10**19:
            return f"job {ident}"
        if isinstance(ident, str) and ident.isascii() and ident.isdigit() and len(ident) <= 19:
            return f"job {ident}"
    return f"{key}[{index}]"


#: The item being read (``job 61``) and where its values out of range are named.
_ITEM: ContextVar[str] = ContextVar("slurm_item", default="")
_REPLACED: ContextVar[list[str] | None] = ContextVar("slurm_replaced", default=None)


@contextmanager
def _replacing(replaced: list[str] | None) -> Iterator[None]:
    """Name the values out of range met while parsing in ``replaced`` (``job 61: priority``)."""
    token = _REPLACED.set(replaced)
    try:
        yield
    finally:
        _REPLACED.reset(token)


def _out_of_range(field: str) -> None:
    """Note that ``field`` of the item being read is out of range (it becomes None)."""
    replaced = _REPLACED.get()
    if replaced is not None:
        replaced.append(f"{_ITEM.get()}: {field}")


def _field(obj: JsonObject, key: str, name: str | None = None) -> int | None:
    """The integer ``obj[key]`` (:func:`_int`); out of range it is None, named ``name or key``."""
    return _int(obj.get(key), name or key)


def _fit(value: int | None, name: str) -> int | None:
    """A value computed from fields (a product): None, named, when past a signed 64-bit int."""
    if value is None or fits_int64(value):
        return value
    _out_of_range(name)
    return None


def _time(obj: JsonObject, key: str, name: str | None = None) -> int | None:
    """Epoch seconds ``obj[key]`` as nanoseconds; 0 and null are unset, one out of range named."""
    value = obj.get(key)
    ns = epoch_ns(value)
    past = (isinstance(value, int) and value > 0) or (
        isinstance(value, float) and not math.isfinite(value)
    )
    if ns is None and past and not isinstance(value, bool):
        _out_of_range(name or key)
    return ns


# ------------------------------------------------------------------ squeue


def parse_squeue_json(
    data: bytes,
    *,
    source: str = "squeue --json",
    cluster: str | None,
    observed_ns: int,
    replaced: list[str] | None = None,
    refused: list[str] | None = None,
    raw_ids: set[tuple[str, int | None]] | None = None,
) -> list[JobRecord]:
    """Every job ``squeue --json`` lists. ``cluster`` None takes the jobs' own ``cluster``.

    Given ``raw_ids``, the (raw job id, submit time) of each job is added to it:
    an array task ``61_1`` is job ``62`` to Slurm.
    """
    _, items = load_json(data, source, "jobs")
    with _replacing(replaced):
        jobs = _each(
            items, source, "jobs", lambda item: _squeue_job(item, cluster, observed_ns), refused
        )
    if raw_ids is not None:
        raw_ids.update((raw_job_id(job), job.submit_ns) for job in jobs)
    return jobs


def raw_job_id(record: JobRecord) -> str:
    """Slurm's own id of the job (``62`` for the array task ``61_1``), from its payload.

    For a record without one in its payload, its ``job_id``.
    """
    try:
        payload = json.loads(record.raw_json)
    except ValueError:
        return record.job_id
    if isinstance(payload, dict):
        for key in ("job_id", "JobIDRaw", "JobId"):
            value = payload.get(key)
            if isinstance(value, int | str) and not isinstance(value, bool) and str(value):
                return str(value)
    return record.job_id


def is_array_remainder(job_id: str) -> bool:
    """Whether ``job_id`` names the pending remainder of an array (``61_[2-5%2]``):
    the tasks not yet split out of it, no job of its own."""
    return "_[" in job_id


def _squeue_job(job: JsonObject, cluster: str | None, observed_ns: int) -> JobRecord:
    native = _str(job["job_state"]) or ""
    reason = _str(job.get("state_reason"))
    state = job_state(native, reason)
    start_ns = _time(job, "start_time")
    end_ns = _time(job, "end_time")
    finished = state in ("completed", "failed", "cancelled", "timeout")
    if state in ("queued", "held") or not ran(_str(job.get("nodes"))):
        # A pending job's start_time is only the scheduler's estimate (a year
        # ahead when it has none); a job cancelled while pending gets
        # start_time = end_time: neither started.
        start_ns = None
    if not finished:
        # A live job's end_time is a projection (its time limit), not an end.
        end_ns = None
    exit_status, exit_signal = job_exit(
        native, state, *decode_wait_status(_field(job, "exit_code") or 0)
    )
    array_job = _field(job, "array_job_id") or 0
    used = None
    if start_ns is not None:
        until = end_ns if end_ns is not None else observed_ns
        used = max(0, (until - start_ns) // NS_PER_S)
    tres = tres_map(_str(job.get("tres_req_str")) or "")
    cpus = _field(job, "cpus")
    nodes = _field(job, "node_count")
    return JobRecord(
        cluster=cluster or _str(job.get("cluster")) or SCHEDULER,
        scheduler=SCHEDULER,
        job_id=_job_id(job["job_id"], array_job, job.get("array_task_id"), job),
        submit_ns=_time(job, "submit_time"),
        observed_ns=observed_ns,
        state=state,
        native_state=native,
        substate=substate(reason),
        name=_str(job.get("name")),
        user=_str(job.get("user_name")),
        account=_str(job.get("account")),
        queue=_str(job.get("partition")),
        priority=_field(job, "priority"),
        array_parent=str(array_job) if array_job else None,
        exec_hosts=expand_hostlist(_str(job.get("nodes")) or ""),
        nodes_requested=nodes,
        cpus_requested=cpus,
        gpus_requested=_gpus(tres),
        mem_requested_bytes=_squeue_memory(job, tres, cpus, nodes),
        walltime_requested_seconds=_minutes(job, "time_limit"),
        walltime_used_seconds=used,
        eligible_ns=_time(job, "eligible_time"),
        start_ns=start_ns,
        end_ns=end_ns,
        exit_status=exit_status,
        exit_signal=exit_signal,
        comment=_str(job.get("comment")),
        raw_json=_raw(job),
    )


def _squeue_memory(
    job: JsonObject, tres: dict[str, str], cpus: int | None, nodes: int | None
) -> int | None:
    per_node = _field(job, "memory_per_node")
    if per_node:
        return _fit(per_node * MIB * (nodes or 1), "memory_per_node")
    per_cpu = _field(job, "memory_per_cpu")
    if per_cpu:
        return _fit(per_cpu * MIB * (cpus or 1), "memory_per_cpu")
    return memory_bytes(tres["mem"]) if "mem" in tres else None


# ------------------------------------------------------------------- sinfo


def parse_sinfo_json(
    data: bytes,
    *,
    source: str = "sinfo --json",
    cluster: str,
    observed_ns: int,
    replaced: list[str] | None = None,
    refused: list[str] | None = None,
) -> list[NodeRecord]:
    """Every node ``sinfo --json`` lists."""
    _, items = load_json(data, source, "nodes")
    with _replacing(replaced):
        return _each(
            items, source, "nodes", lambda item: _sinfo_node(item, cluster, observed_ns), refused
        )


def _sinfo_node(node: JsonObject, cluster: str, observed_ns: int) -> NodeRecord:
    base = _str(node["state"]) or "unknown"
    flags = tuple(str(f) for f in _list(node.get("state_flags")))
    native = "+".join((base.upper(), *(f.upper() for f in flags)))
    tres_used = tres_map(_str(node.get("tres_used")) or "")
    tres = tres_map(_str(node.get("tres")) or "")
    real_mb = _field(node, "real_memory")
    alloc_mb = _field(node, "alloc_memory")
    return NodeRecord(
        cluster=cluster,
        scheduler=SCHEDULER,
        node=_str(node["name"]) or "",
        observed_ns=observed_ns,
        state=node_state(base, flags),
        native_state=native,
        partitions=tuple(str(p) for p in _list(node.get("partitions"))),
        cpus_total=_field(node, "cpus"),
        cpus_allocated=_field(node, "alloc_cpus"),
        gpus_total=_gpus(tres),
        gpus_allocated=_gpus(tres_used),
        mem_total_bytes=_fit(real_mb * MIB, "real_memory") if real_mb is not None else None,
        mem_allocated_bytes=_fit(alloc_mb * MIB, "alloc_memory") if alloc_mb is not None else None,
        comment=_str(node.get("reason")) or _str(node.get("comment")),
        raw_json=_raw(node),
    )


# ------------------------------------------------------------------- sacct


def parse_sacct_json(
    data: bytes,
    *,
    source: str = "sacct --json",
    cluster: str | None,
    observed_ns: int,
    replaced: list[str] | None = None,
    refused: list[str] | None = None,
) -> list[JobRecord]:
    """Every job ``sacct --json`` returns (its steps stay in ``raw_json``)."""
    _, items = load_json(data, source, "jobs")
    with _replacing(replaced):
        return _each(
            items, source, "jobs", lambda item: _sacct_job(item, cluster, observed_ns), refused
        )


def _sacct_job(job: JsonObject, cluster: str | None, observed_ns: int) -> JobRecord:
    state_obj = _obj(job["state"])
    native = _str(state_obj.get("current")) or ""
    reason = _str(state_obj.get("reason"))
    state = job_state(native, reason)
    if native.upper() == "REQUEUED":
        state = REQUEUED_RUN  # this run ended; the job queued again is another one
    times = _obj(job.get("time"))
    array = _obj(job.get("array"))
    array_job = _field(array, "job_id", "array.job_id") or 0
    task: object = array.get("task_id")
    exit_status, exit_signal = _sacct_exit(_obj(job.get("exit_code")), native, state)
    required = _obj(job.get("required"))
    tres = {
        str(_obj(t).get("type")): _obj(t).get("count")
        for t in _list(_obj(job.get("tres")).get("requested"))
    }
    mem_mb = _field(tres, "mem", "tres.requested.mem") or _field(
        required, "memory", "required.memory"
    )
    total = _obj(times.get("total"))
    cpu_used = None
    if "seconds" in total:
        cpu_used = _fit(
            (_field(total, "seconds", "time.total.seconds") or 0)
            + round((_field(total, "microseconds", "time.total.microseconds") or 0) / 1e6),
            "time.total",
        )
    started = _time(times, "start", "time.start")
    if not ran(_str(job.get("nodes"))):
        started = None  # ended without nodes: Slurm sets start = end, yet it never ran
    comment = _obj(job.get("comment"))
    return JobRecord(
        cluster=cluster or _str(job.get("cluster")) or SCHEDULER,
        scheduler=SCHEDULER,
        job_id=_job_id(job["job_id"], array_job, task, {"array_task_string": array.get("task")}),
        submit_ns=_time(times, "submission", "time.submission"),
        observed_ns=observed_ns,
        state=state,
        native_state=native,
        substate=substate(reason),
        name=_str(job.get("name")),
        user=_str(job.get("user")),
        account=_str(job.get("account")),
        queue=_str(job.get("partition")),
        priority=_field(job, "priority"),
        array_parent=str(array_job) if array_job else None,
        exec_hosts=expand_hostlist(_str(job.get("nodes")) or ""),
        nodes_requested=_field(tres, "node", "tres.requested.node"),
        cpus_requested=_field(required, "CPUs", "required.CPUs")
        or _field(tres, "cpu", "tres.requested.cpu"),
        gpus_requested=_field(tres, "gres/gpu", "tres.requested.gres/gpu")
        or _field(tres, "gpu", "tres.requested.gpu"),
        mem_requested_bytes=_fit(mem_mb * MIB, "tres.requested.mem") if mem_mb else None,
        walltime_requested_seconds=_minutes(times, "limit", "time.limit"),
        walltime_used_seconds=(
            _field(times, "elapsed", "time.elapsed") if started is not None else None
        ),
        cpu_used_seconds=cpu_used,
        eligible_ns=_time(times, "eligible", "time.eligible"),
        start_ns=started,
        end_ns=_time(times, "end", "time.end"),
        exit_status=exit_status,
        exit_signal=exit_signal,
        comment=_str(comment.get("job")),
        raw_json=_raw(job),
    )


def _sacct_exit(exit_code: JsonObject, native: str, state: str) -> tuple[int | None, int | None]:
    """(exit status, signal) of sacct's exit_code object; see the module docstring."""
    status = _str(exit_code.get("status")) or ""
    if status == "SIGNALED":
        signal = _field(_obj(exit_code.get("signal")), "signal_id", "exit_code.signal")
        return job_exit(native, state, None, signal)
    code = _field(exit_code, "return_code", "exit_code.return_code")
    if code == 0 and state != "completed":
        code = None  # Slurm 22.05 reports SUCCESS for a job that exited non-zero
    return job_exit(native, state, code, None)


# ------------------------------------------------------------- internals


def _job_id(raw: object, array_job: int, task: object, job: JsonObject) -> str:
    job_id = _int(raw, "job_id")
    if job_id is None:
        raise ValueError(f"job_id {raw!r} is not an integer")
    if array_job:
        task_id = _int(task, "array_task_id")
        if task_id is not None:
            return f"{array_job}_{task_id}"
        pending = _str(job.get("array_task_string"))
        if pending:
            return f"{array_job}_[{pending}]"
    het = _int(job.get("het_job_id"), "het_job_id") or 0
    if het:
        return f"{het}+{_int(job.get('het_job_offset'), 'het_job_offset') or 0}"
    return str(job_id)


def _gpus(tres: Mapping[str, str]) -> int | None:
    for key in ("gres/gpu", "gpu"):
        if key in tres:
            count = tres_int(dict(tres), key)
            if count is None and tres[key].isascii() and tres[key].isdigit():
                _out_of_range(f"tres.{key}")  # digits past a signed 64-bit integer
            return count
    return None


def _minutes(obj: JsonObject, key: str, name: str | None = None) -> int | None:
    """A time limit in minutes as seconds (null: unlimited); out of range it is None, named."""
    minutes = _field(obj, key, name)
    return _fit(minutes * 60, name or key) if minutes is not None else None


def _is_object(value: object) -> TypeGuard[JsonObject]:
    return isinstance(value, dict)


def _obj(value: object) -> JsonObject:
    if value is None:
        return {}
    if not _is_object(value):
        raise TypeError(f"expected an object, got {type(value).__name__}")
    return value


def _list(value: object) -> list[object]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise TypeError(f"expected a list, got {type(value).__name__}")
    return value


def _int(value: object, name: str = "") -> int | None:
    """An integer field; None when absent, or out of range (past int64, NaN, infinite).

    A value out of range is named ``name`` (see :func:`_out_of_range`).
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        _out_of_range(name)
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    elif isinstance(value, str) and value.strip().lstrip("-").isascii():
        digits = value.strip().lstrip("-")
        if not digits.isdigit():
            raise TypeError(f"expected an integer, got {value[:40]!r}")
        if len(digits) > 19:
            _out_of_range(name)
            return None
        value = int(value)
    if isinstance(value, int):
        if not fits_int64(value):
            _out_of_range(name)
            return None
        return value
    raise TypeError(f"expected an integer, got {str(value)[:40]!r}")


def _str(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    return value or None


def _raw(entity: JsonObject) -> str:
    return json.dumps(entity, separators=(",", ":"), ensure_ascii=False, check_circular=False)


def _nothing_found(error: object) -> bool:
    """sacct's "Nothing found with query" (ESLURM_REST_EMPTY_RESULT, 9003): an empty answer."""
    return _is_object(error) and error.get("error_number") == 9003


def _one_line(value: object) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return " ".join(text.split())[:200]


def _describe(err: Exception) -> str:
    if isinstance(err, KeyError):
        return f"missing key {err.args[0]!r}"
    return str(err)
