"""Pure parsers of the job usage collector: a job from a path, the v1 cgroup
files the host collector does not read, and the /proc files of one process.

Every parser takes bytes and the file's name and returns values or raises
:class:`~collectbus.errors.ParseError` naming the file and the line. Numbers
follow :mod:`collectbus.values` through the host collector's
:func:`~collectbus.collectors.host.numbers.counter`: a value out of range is
None, named in the ``replaced`` list a parser is given. The cgroup v2 files
(``cpu.stat``, ``io.stat``, single values) are parsed by
:mod:`collectbus.collectors.host.cgroup`.

Where a job's cgroup lives (docs/architecture.md, "Job usage"):

- Slurm, cgroup v1: ``<controller>/slurm[_NODE]/uid_U/job_J/step_S/...``;
- Slurm, cgroup v2: ``system.slice/slurmstepd.scope/job_J/step_S/...``;
- the PBS cgroups hook: ``[<controller>/]pbs_jobs.service/jobid/J/...``
  (``jobs/J`` in some versions on cgroup v2).
"""

from __future__ import annotations

from typing import NamedTuple

from collectbus.collectors.host.numbers import counter
from collectbus.errors import ParseError

__all__ = [
    "JobPath",
    "ProcStat",
    "job_from_environ",
    "job_in_path",
    "jobs_in_proc_cgroup",
    "parse_blkio_bytes",
    "parse_pids",
    "parse_proc_io",
    "parse_proc_stat",
]

#: The environment variables that name a process's job (Slurm's
#: jobacct_gather/linux reads ``SLURM_JOB_ID`` the same way).
JOB_ENVIRONMENT = ((b"SLURM_JOB_ID", "slurm"), (b"PBS_JOBID", "pbs"))

_PBS_JOB_FOLDERS = frozenset({"jobid", "jobs"})


class JobPath(NamedTuple):
    """A job's cgroup: its scheduler, its id, and its path up to the job's folder."""

    scheduler: str
    job_id: str
    path: str


def _shown(raw: bytes) -> str:
    text = raw.decode("utf-8", "backslashreplace")
    return repr(text if len(text) <= 60 else text[:60] + "...")


def _slurm_id(name: str) -> str | None:
    """``job_123`` to ``123``; None for any other name."""
    if name.startswith("job_"):
        digits = name[4:]
        if digits.isdigit() and digits.isascii():
            return digits
    return None


def job_in_path(path: str) -> JobPath | None:
    """The job whose cgroup ``path`` is, or is inside; None for any other path.

    ``path`` is relative to a hierarchy's root, with or without a leading
    ``/``: a ``/proc/PID/cgroup`` path, or a folder found under the root.
    """
    parts = [p for p in path.split("/") if p]
    for i, name in enumerate(parts):
        if i == 0:
            continue
        parent = parts[i - 1]
        job_id: str | None = None
        scheduler = "slurm"
        if parent == "slurmstepd.scope" or (
            parent.startswith("uid_")
            and parent[4:].isdigit()
            and i >= 2
            and parts[i - 2].startswith("slurm")
        ):
            job_id = _slurm_id(name)
        elif parent in _PBS_JOB_FOLDERS and i >= 2 and parts[i - 2] == "pbs_jobs.service":
            job_id, scheduler = name, "pbs"
        if job_id:
            return JobPath(scheduler, job_id, "/" + "/".join(parts[: i + 1]))
    return None


def jobs_in_proc_cgroup(data: bytes) -> JobPath | None:
    """The job of a process from its ``/proc/PID/cgroup`` (``ID:controllers:path``
    lines), or None: the first line whose path is inside a job's cgroup."""
    for line in data.split(b"\n"):
        _, sep, rest = line.partition(b":")
        _, sep2, path = rest.partition(b":")
        if sep and sep2:
            found = job_in_path(path.decode("utf-8", "backslashreplace"))
            if found is not None:
                return found
    return None


def job_from_environ(data: bytes) -> tuple[str, str] | None:
    """(scheduler, job id) from ``/proc/PID/environ`` (NUL-separated), or None."""
    for entry in data.split(b"\0"):
        for name, scheduler in JOB_ENVIRONMENT:
            if entry.startswith(name) and entry[len(name) : len(name) + 1] == b"=":
                value = entry[len(name) + 1 :].decode("utf-8", "backslashreplace").strip()
                if value:
                    return scheduler, value
    return None


def parse_pids(data: bytes, source: str) -> list[int]:
    """``cgroup.procs`` or ``tasks``: one process id a line."""
    pids = []
    for number, line in enumerate(data.split(b"\n"), 1):
        token = line.strip()
        if not token:
            continue
        if not (token.isdigit() and token.isascii() and len(token) <= 10):
            raise ParseError(source, number, f"not a process id: {_shown(line)}")
        pids.append(int(token))
    return pids


def parse_blkio_bytes(
    data: bytes, source: str, replaced: list[str] | None = None
) -> tuple[int | None, int | None]:
    """cgroup v1 ``blkio.throttle.io_service_bytes``: (read, write) bytes over its devices.

    Lines are ``MAJ:MIN Op bytes`` (Op ``Read``, ``Write``, ``Sync``, ``Async``,
    ``Discard``, ``Total``) and a last ``Total bytes``. A sum with a value out
    of range, or past ``2**63 - 1``, is None.
    """
    sums: dict[bytes, int | None] = {b"Read": 0, b"Write": 0}
    for number, line in enumerate(data.split(b"\n"), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) == 2 and fields[0] == b"Total":
            continue
        if len(fields) != 3 or fields[0].count(b":") != 1:
            raise ParseError(source, number, f"expected 'MAJ:MIN Op bytes': {_shown(line)}")
        try:
            value = counter(fields[2])
        except ValueError as err:
            raise ParseError(source, number, f"not an integer: {_shown(fields[2])}") from err
        op = fields[1]
        if op in sums:
            total = sums[op]
            new = None if value is None or total is None else total + value
            sums[op] = new if new is None or new < 2**63 else None
    out = sums[b"Read"], sums[b"Write"]
    if replaced is not None:
        name = source.rsplit("/", 1)[-1]
        replaced.extend(
            f"cgroup.{name}.{op}"
            for op, v in zip(("read", "write"), out, strict=False)
            if v is None
        )
    return out


class ProcStat(NamedTuple):
    """What the collector takes of ``/proc/PID/stat`` (proc(5)), in clock ticks and pages."""

    #: utime + stime + cutime + cstime: the process's CPU and that of the
    #: children it reaped.
    cpu_ticks: int | None
    start_ticks: int
    rss_pages: int | None


def parse_proc_stat(data: bytes, source: str, replaced: list[str] | None = None) -> ProcStat:
    """``/proc/PID/stat``: CPU ticks, start time and resident pages.

    The command name (field 2) is in parentheses and may hold spaces and
    parentheses itself: the fields are counted from its last ``)``.
    """
    close = data.rfind(b")")
    fields = data[close + 1 :].split() if close >= 0 else []
    # fields[0] is field 3 (state); utime is field 14, rss field 24.
    if len(fields) < 22:
        raise ParseError(source, 1, f"not a /proc/PID/stat line: {_shown(data)}")
    try:
        utime, stime, cutime, cstime = (counter(f) for f in fields[11:15])
        start = counter(fields[19])
        rss = counter(fields[21])
    except ValueError as err:
        raise ParseError(source, 1, f"not an integer among the fields: {_shown(data)}") from err
    if start is None:
        raise ParseError(source, 1, f"start time out of range: {_shown(fields[19])}")
    parts = (utime, stime, cutime, cstime)
    cpu = None if None in parts else sum(p for p in parts if p is not None)
    if cpu is not None and cpu >= 2**63:
        cpu = None
    if replaced is not None:
        if cpu is None:
            replaced.append(f"{source}.cpu_ticks")
        if rss is None:
            replaced.append(f"{source}.rss")
    return ProcStat(cpu, start, rss)


def parse_proc_io(
    data: bytes, source: str, replaced: list[str] | None = None
) -> tuple[int | None, int | None]:
    """``/proc/PID/io``: (read_bytes, write_bytes), the bytes the process
    caused to be fetched from and sent to storage."""
    found: dict[bytes, int | None] = {}
    for number, line in enumerate(data.split(b"\n"), 1):
        if not line.strip():
            continue
        key, sep, raw = line.partition(b":")
        if not sep:
            raise ParseError(source, number, f"not a 'key: value' line: {_shown(line)}")
        try:
            found[key.strip()] = counter(raw.strip())
        except ValueError as err:
            raise ParseError(source, number, f"not an integer: {_shown(raw)}") from err
    missing = [k.decode() for k in (b"read_bytes", b"write_bytes") if k not in found]
    if missing:
        raise ParseError(source, None, f"no {' nor '.join(missing)}")
    out = found[b"read_bytes"], found[b"write_bytes"]
    if replaced is not None:
        replaced.extend(
            f"{source}.{k}"
            for k, v in zip(("read_bytes", "write_bytes"), out, strict=False)
            if v is None
        )
    return out
