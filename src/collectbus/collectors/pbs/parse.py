"""Pure PBS parsers: ``-F json`` bytes in, scheduler-neutral records out.

``parse_qstat_jobs`` reads ``qstat [-x] -f -F json``, ``parse_qstat_queues``
``qstat -Q -f -F json``, ``parse_qstat_server`` ``qstat -B -f -F json`` and
``parse_pbsnodes`` ``pbsnodes -a -F json``. Each returns a :class:`Parsed`:
the records, what :mod:`.jsonfix` repaired, and the problems met.

A value that cannot be read leaves its field None, is counted in the
problems, and costs nothing else: the entity still gets its record. A number
that no column can hold (past a signed 64-bit integer, NaN, an infinity: the
rule of :mod:`collectbus.values`) is None too, named in
``Parsed.out_of_range`` for the collection's details. An entity that is not a
JSON object, or that cannot be read at all, gets no record (one problem names
it); for jobs that makes the listing incomplete (``Parsed.complete`` is
False), so that no job is taken for gone because its entry was unreadable.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Generic, TypeVar

from collectbus.codec import finite_json
from collectbus.collectors.pbs import fields as f
from collectbus.collectors.pbs.jsonfix import JsonValue, Repairs, loads_pbs
from collectbus.records import JobRecord, NodeRecord, QueueRecord, SystemRecord
from collectbus.values import fits_int64

__all__ = [
    "JobParser",
    "Parsed",
    "parse_pbsnodes",
    "parse_qstat_jobs",
    "parse_qstat_queues",
    "parse_qstat_server",
]

T = TypeVar("T")
R = TypeVar("R")
SCHEDULER = "pbs"
#: At most this many problems are kept word for word; the rest are counted.
MAX_PROBLEMS = 20


@dataclass(slots=True)
class Parsed(Generic[R]):
    """The records of one payload, with what it took to read them."""

    records: list[R] = field(default_factory=list)
    repairs: Repairs = field(default_factory=Repairs)
    problems: list[str] = field(default_factory=list)
    problem_count: int = 0
    #: Every entity of the payload got its record, and nothing was cut from it.
    complete: bool = True
    #: The ``pbs_server`` of the payload's header, when it has one.
    server: str | None = None
    #: Whether the payload has its entity section (``Jobs``, ``Queue``, ...).
    has_section: bool = True
    #: Values replaced by None because no column can hold them (``job.field``).
    out_of_range: list[str] = field(default_factory=list)

    def problem(self, text: str) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(text)


_ENCODE = json.JSONEncoder(
    separators=(",", ":"), ensure_ascii=False, check_circular=False, allow_nan=False
).encode

#: What reading one value or one entity may raise, short of a bug: the entity
#: or the value is refused, never the whole collection.
BAD_VALUE = (ValueError, TypeError, OverflowError, IndexError, KeyError, RecursionError)


def _raw(value: Mapping[str, JsonValue]) -> str:
    """An entity as compact JSON: ``raw_json`` (a NaN or infinity is null)."""
    try:
        return _ENCODE(value)
    except ValueError:
        return _ENCODE(finite_json(value))


@contextmanager
def _refusing(out: Parsed[R], cluster: str, name: str) -> Iterator[None]:
    """Refuse one entity that cannot be read at all: one problem naming it; the rest goes on.

    The listing is then incomplete (``complete`` False).
    """
    try:
        yield
    except BAD_VALUE as err:
        out.problem(f"{cluster}/{name}: refused: {_short(err)}")
        out.complete = False


def _short(err: BaseException) -> str:
    text = str(err) or type(err).__name__
    return text if len(text) <= 120 else text[:117] + "..."


class _Entity:
    """One entity's attributes, read through converters that note what fails."""

    __slots__ = ("attrs", "name", "out_of_range", "problem")

    def __init__(self, name: str, attrs: Mapping[str, JsonValue], out: Parsed[R]) -> None:
        self.name = name
        self.attrs = attrs
        self.problem = out.problem
        self.out_of_range = out.out_of_range

    def get(self, key: str, convert: Callable[[JsonValue], T], sub: str | None = None) -> T | None:
        attrs = self.attrs
        if sub is not None:
            nested = attrs.get(sub)
            if not isinstance(nested, dict):
                return None
            attrs = nested
        value = attrs.get(key)
        if value is None:
            return None
        try:
            result = convert(value)
        except f.OutOfRange:
            result = None
        except BAD_VALUE as err:
            where = f"{sub}.{key}" if sub else key
            self.problem(f"{self.name}: {where}: {_short(err)}")
            return None
        if result is None or (
            isinstance(result, int) and not isinstance(result, bool) and not fits_int64(result)
        ):
            self.out_of_range.append(f"{self.name}.{sub}.{key}" if sub else f"{self.name}.{key}")
            return None
        return result


def _int(value: JsonValue) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return f.whole(value)
    if isinstance(value, str):
        text = value.strip()
        digits = text.lstrip("+-")
        if digits.isascii() and digits.isdigit() and len(digits) > 19:
            raise f.OutOfRange("an integer out of range")
        try:
            return int(text)
        except ValueError:
            return f.whole(float(text))  # "1e3", "inf"; ValueError when not a number
    raise ValueError("not an integer")


def _str(value: JsonValue) -> str:
    if isinstance(value, list):  # a duplicated key (see jsonfix): its last value
        if not value:
            raise ValueError("an empty list, not a value")
        value = value[-1]
    if isinstance(value, dict | list):
        raise ValueError(f"a JSON {type(value).__name__}, not a value")
    return value if isinstance(value, str) else str(value)


def _hosts(value: JsonValue) -> tuple[str, ...]:
    return f.parse_exec_host(_str(value))


def _substate(value: JsonValue) -> str:
    return str(_int(value))


def _section(
    doc: Mapping[str, JsonValue], key: str, out: Parsed[R]
) -> list[tuple[str, Mapping[str, JsonValue]]]:
    server = doc.get("pbs_server")
    out.server = server if isinstance(server, str) else None
    section = doc.get(key)
    if section is None:
        out.has_section = False
        return []
    if not isinstance(section, dict):
        out.problem(f"{key}: not an object")
        out.complete = False
        return []
    entities: list[tuple[str, Mapping[str, JsonValue]]] = []
    for name, attrs in section.items():
        if isinstance(attrs, dict):
            entities.append((name, attrs))
        else:
            out.problem(f"{name}: not an object")
            out.complete = False
    return entities


# ------------------------------------------------------------------- jobs


#: The project PBS gives a job submitted without one.
DEFAULT_PROJECT = "_pbs_project_default"


def _project(value: str | None) -> str | None:
    return None if value == DEFAULT_PROJECT else value


class JobParser:
    """Turns one job's attributes into a :class:`JobRecord`."""

    __slots__ = ("cluster", "zone")

    def __init__(self, *, cluster: str, zone: tzinfo | None) -> None:
        self.cluster = cluster
        self.zone = zone

    def time(self, value: JsonValue) -> int:
        if isinstance(value, int) and not isinstance(value, bool):  # epoch seconds
            return value * 1_000_000_000  # out of range when past int64: None
        return f.parse_time(_str(value), self.zone)

    def job(
        self,
        job_id: str,
        attrs: Mapping[str, JsonValue],
        observed_ns: int,
        out: Parsed[R],
        *,
        raw: str | None = None,
    ) -> JobRecord:
        """The record of one job; ``raw`` is its compact JSON when the caller has it."""
        e = _Entity(job_id, attrs, out)
        letter = e.get("job_state", _str) or "?"
        substate = e.get("substate", _substate)
        status = e.get("Exit_status", _int)
        state = f.job_state(letter, int(substate) if substate else None, status)
        owner = e.get("Job_Owner", _str)
        end_ns = None
        if state in ("completed", "failed", "cancelled", "timeout"):
            end_ns = e.get("obittime", self.time)
            if end_ns is None:
                end_ns = e.get("history_timestamp", self.time) or e.get("mtime", self.time)
        return JobRecord(
            cluster=self.cluster,
            scheduler=SCHEDULER,
            job_id=job_id,
            submit_ns=e.get("ctime", self.time),
            observed_ns=observed_ns,
            state=state,
            native_state=letter,
            substate=substate,
            name=e.get("Job_Name", _str),
            user=owner.split("@", 1)[0] if owner else None,
            # The project a job is charged to: Account_Name, else PBS's project
            # attribute unless it is the server's default (no project given).
            account=e.get("Account_Name", _str) or _project(e.get("project", _str)),
            queue=e.get("queue", _str),
            priority=e.get("Priority", _int),
            array_parent=e.get("array_id", _str) or _array_parent(job_id),
            exec_hosts=e.get("exec_host", _hosts) or (),
            exec_vnode=e.get("exec_vnode", _str),
            nodes_requested=e.get("nodect", _int, "Resource_List"),
            cpus_requested=e.get("ncpus", _int, "Resource_List"),
            gpus_requested=e.get("ngpus", _int, "Resource_List"),
            mem_requested_bytes=e.get("mem", f.parse_size, "Resource_List"),
            walltime_requested_seconds=e.get("walltime", f.parse_duration, "Resource_List"),
            walltime_used_seconds=e.get("walltime", f.parse_duration, "resources_used"),
            cpu_used_seconds=e.get("cput", f.parse_duration, "resources_used"),
            mem_used_bytes=e.get("mem", f.parse_size, "resources_used"),
            eligible_ns=e.get("etime", self.time),
            eligible_seconds=e.get("eligible_time", f.parse_duration),
            start_ns=e.get("stime", self.time),
            end_ns=end_ns,
            exit_status=status,
            exit_signal=f.exit_signal(status),
            comment=e.get("comment", _str),
            raw_json=_raw(attrs) if raw is None else raw,
        )


def _array_parent(job_id: str) -> str | None:
    """``123[4].server`` is subjob 4 of the array job ``123[].server``."""
    head, sep, tail = job_id.partition("[")
    if not sep or tail.startswith("]"):
        return None
    _, sep, rest = tail.partition("]")
    return f"{head}[]{rest}" if sep else None


def parse_qstat_jobs(
    payload: bytes, *, cluster: str, zone: tzinfo | None, observed_ns: int
) -> Parsed[JobRecord]:
    """Every job of a ``qstat [-x] -f -F json`` payload.

    Raises :class:`~collectbus.collectors.pbs.jsonfix.JsonRepairError` when
    the payload is not JSON even after repair. A payload with no ``Jobs``
    section has ``has_section`` False: PBS prints no section when there is
    no job, and also when it could not reach the server (the caller tells the
    two apart by the exit status and stderr).
    """
    doc, repairs = loads_pbs(payload)
    out: Parsed[JobRecord] = Parsed(repairs=repairs, complete=not repairs.lossy)
    parser = JobParser(cluster=cluster, zone=zone)
    for job_id, attrs in _section(doc, "Jobs", out):
        with _refusing(out, cluster, job_id):
            out.records.append(parser.job(job_id, attrs, observed_ns, out))
    return out


# ----------------------------------------------------------------- queues


def parse_qstat_queues(payload: bytes, *, cluster: str, observed_ns: int) -> Parsed[QueueRecord]:
    """Every queue of a ``qstat -Q -f -F json`` payload."""
    doc, repairs = loads_pbs(payload)
    out: Parsed[QueueRecord] = Parsed(repairs=repairs, complete=not repairs.lossy)
    for name, attrs in _section(doc, "Queue", out):
        with _refusing(out, cluster, name):
            e = _Entity(name, attrs, out)
            counts = e.get("state_count", f.parse_state_count) or ()
            by_state = dict(counts)
            out.records.append(
                QueueRecord(
                    cluster=cluster,
                    scheduler=SCHEDULER,
                    queue=name,
                    observed_ns=observed_ns,
                    enabled=e.get("enabled", f.parse_bool),
                    started=e.get("started", f.parse_bool),
                    jobs_total=e.get("total_jobs", _int),
                    jobs_queued=by_state.get("Queued"),
                    jobs_running=by_state.get("Running"),
                    jobs_held=by_state.get("Held"),
                    state_counts=counts,
                    raw_json=_raw(attrs),
                )
            )
    return out


def parse_qstat_server(payload: bytes, *, cluster: str, observed_ns: int) -> Parsed[SystemRecord]:
    """The server(s) of a ``qstat -B -f -F json`` payload."""
    doc, repairs = loads_pbs(payload)
    out: Parsed[SystemRecord] = Parsed(repairs=repairs, complete=not repairs.lossy)
    for name, attrs in _section(doc, "Server", out):
        with _refusing(out, cluster, name):
            e = _Entity(name, attrs, out)
            out.records.append(
                SystemRecord(
                    cluster=cluster,
                    scheduler=SCHEDULER,
                    server=name,
                    observed_ns=observed_ns,
                    server_state=e.get("server_state", _str),
                    jobs_total=e.get("total_jobs", _int),
                    state_counts=e.get("state_count", f.parse_state_count) or (),
                    raw_json=_raw(attrs),
                )
            )
    return out


# ------------------------------------------------------------------ nodes

# pbsnodes states (RG "Vnode States"); a vnode can be in several at once,
# comma-separated. The first rule that matches wins, worst first.
_NODE_STATES: tuple[tuple[frozenset[str], str], ...] = (
    (frozenset({"down", "state-unknown", "unresolvable", "stale"}), "down"),
    (frozenset({"offline"}), "offline"),
    (frozenset({"maintenance"}), "drained"),
    (frozenset({"resv-exclusive"}), "reserved"),
    (frozenset({"job-busy", "job-exclusive", "busy"}), "allocated"),
)


def node_state(native: str, cpus_allocated: int | None) -> str:
    """The neutral state of a vnode from its pbsnodes ``state``."""
    states = {s.strip() for s in native.split(",")}
    for names, neutral in _NODE_STATES:
        if states & names:
            return neutral
    if "free" in states:
        return "mixed" if cpus_allocated else "idle"
    return "unknown"


def parse_pbsnodes(payload: bytes, *, cluster: str, observed_ns: int) -> Parsed[NodeRecord]:
    """Every vnode of a ``pbsnodes -a -F json`` payload."""
    doc, repairs = loads_pbs(payload)
    out: Parsed[NodeRecord] = Parsed(repairs=repairs, complete=not repairs.lossy)
    for name, attrs in _section(doc, "nodes", out):
        with _refusing(out, cluster, name):
            out.records.append(_node(name, attrs, cluster, observed_ns, out))
    return out


def _node(
    name: str, attrs: Mapping[str, JsonValue], cluster: str, observed_ns: int, out: Parsed[R]
) -> NodeRecord:
    """The record of one vnode."""
    e = _Entity(name, attrs, out)
    native = e.get("state", _str) or "unknown"
    assigned = "resources_assigned"
    cpus_allocated = e.get("ncpus", _int, assigned)
    if cpus_allocated is None and isinstance(attrs.get(assigned), dict):
        cpus_allocated = 0  # PBS prints an empty object when nothing is assigned
    jobs = attrs.get("jobs")
    partition = e.get("partition", _str) or e.get("queue", _str)
    return NodeRecord(
        cluster=cluster,
        scheduler=SCHEDULER,
        node=name,
        observed_ns=observed_ns,
        state=node_state(native, cpus_allocated),
        native_state=native,
        partitions=(partition,) if partition else (),
        cpus_total=e.get("ncpus", _int, "resources_available"),
        cpus_allocated=cpus_allocated,
        gpus_total=e.get("ngpus", _int, "resources_available"),
        gpus_allocated=e.get("ngpus", _int, assigned),
        mem_total_bytes=e.get("mem", f.parse_size, "resources_available"),
        mem_allocated_bytes=e.get("mem", f.parse_size, assigned),
        jobs=_node_jobs(jobs),
        comment=e.get("comment", _str),
        raw_json=_raw(attrs),
    )


def _node_jobs(jobs: JsonValue) -> tuple[str, ...]:
    """Job ids on a vnode; PBS lists one per CPU slot (``1000.pbs/3``) in some versions."""
    items = jobs.split(",") if isinstance(jobs, str) else jobs
    if not isinstance(items, list):
        return ()
    return tuple(dict.fromkeys(str(j).strip().split("/", 1)[0] for j in items))
