"""Realistic scheduler records for tests and benchmarks, without a scheduler.

:func:`make_pbs_job` builds a :class:`~collectbus.records.JobRecord` as the
PBS collector would from ``qstat -f -F json``: the neutral fields, and a raw
payload with the attributes (and roughly the size, about 2.5 KB) of a real
PBS Pro job: owner, account, ``Resource_List``, ``resources_used``,
``Variable_List`` with the submitting shell's environment. The same
arguments always give the same record.
"""

from __future__ import annotations

import json
import time

from collectbus.clock import NS_PER_S
from collectbus.records import JobRecord

#: PBS job state letters for the neutral states (PBS reference guide, "Job States").
PBS_LETTERS = {
    "queued": "Q",
    "held": "H",
    "running": "R",
    "suspended": "S",
    "completed": "F",
    "failed": "F",
    "cancelled": "F",
    "timeout": "F",
}
_PBS_SUBSTATES = {"Q": "10", "H": "20", "R": "42", "S": "43", "F": "92"}
_PATH = ":".join(
    f"/opt/site/24.347.0/spack/unified/0.9.2/install/linux-sles15-x86_64/gcc-13.3.0/{p}/bin"
    for p in ("mpich-develop-sxnhr7p", "hwloc-2.11.3-g7c7dzn", "libxml2-2.13.5-jxhkqdj")
)


def _ctime(ns: int) -> str:
    return time.strftime("%a %b %d %H:%M:%S %Y", time.gmtime(ns // NS_PER_S))


def _hms(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def make_pbs_job(
    number: int,
    *,
    cluster: str = "aurora",
    submit_ns: int,
    observed_ns: int,
    state: str = "queued",
    user: str | None = None,
    account: str = "Project0",
    queue: str = "prod",
    nodes: int = 2,
    cpus_per_node: int = 208,
    walltime_s: int = 3600,
    eligible_ns: int | None = None,
    eligible_s: int | None = None,
    start_ns: int | None = None,
    end_ns: int | None = None,
    walltime_used_s: int | None = None,
    exit_status: int | None = None,
    priority: int = 0,
    comment: str | None = None,
    server: str = "pbs01.example.org",
) -> JobRecord:
    """A PBS job record; ``number`` makes its id ``<number>.<server>``."""
    job_id = f"{number}.{server}"
    user = user or f"user{number % 97:03d}"
    letter = PBS_LETTERS.get(state, "Q")
    hosts = tuple(f"x{4000 + (number * 7 + i) % 5000}c0s{i % 8}b0n0" for i in range(nodes))
    running = start_ns is not None
    exit_code = exit_status
    if exit_code is None and state in ("completed", "failed", "timeout", "cancelled"):
        exit_code = {"completed": 0, "failed": 1, "timeout": -29, "cancelled": 271}[state]
    raw: dict[str, object] = {
        "Job_Name": f"sim_{number % 13}_r{number % 5}",
        "Job_Owner": f"{user}@login-{number % 4}.example.org",
        "job_state": letter,
        "queue": queue,
        "server": server,
        "Account_Name": account,
        "ctime": _ctime(submit_ns),
        "qtime": _ctime(submit_ns),
        # PBS changes mtime when the job is modified (here: when it started or ended).
        "mtime": _ctime(end_ns or start_ns or submit_ns),
        "Mail_Users": f"{user}@example.org",
        "Output_Path": f"login-0:/lus/projects/{account}/{user}/run{number}.o",
        "Error_Path": f"login-0:/lus/projects/{account}/{user}/run{number}.e",
        "Priority": priority,
        "Resource_List": {
            "ncpus": nodes * cpus_per_node,
            "nodect": nodes,
            "place": "scatter",
            "select": f"{nodes}:ncpus={cpus_per_node}",
            "walltime": _hms(walltime_s),
            "filesystems": "home:flare",
        },
        "substate": int(_PBS_SUBSTATES[letter]),
        "Variable_List": {
            "PBS_O_HOME": f"/home/{user}",
            "PBS_O_LANG": "en_US.UTF-8",
            "PBS_O_LOGNAME": user,
            "PBS_O_PATH": _PATH,
            "PBS_O_MAIL": f"/var/spool/mail/{user}",
            "PBS_O_SHELL": "/bin/bash",
            "PBS_O_WORKDIR": f"/lus/projects/{account}/{user}/campaign/run{number}",
            "PBS_O_SYSTEM": "Linux",
            "PBS_O_QUEUE": queue,
            "PBS_O_HOST": f"login-{number % 4}.example.org",
        },
        "eligible_time": _hms(eligible_s or 0),
        "project": account,
    }
    if comment is not None:
        raw["comment"] = comment
    if eligible_ns is not None:
        raw["etime"] = _ctime(eligible_ns)
    if running:
        raw["stime"] = _ctime(start_ns or 0)
        raw["exec_host"] = "+".join(f"{h}/0*{cpus_per_node}" for h in hosts)
        raw["resources_used"] = {"walltime": _hms(walltime_used_s or 0), "ncpus": nodes}
    if exit_code is not None:
        raw["Exit_status"] = exit_code
    return JobRecord(
        cluster=cluster,
        scheduler="pbs",
        job_id=job_id,
        submit_ns=submit_ns,
        observed_ns=observed_ns,
        state=state,
        native_state=letter,
        substate=_PBS_SUBSTATES[letter],
        name=str(raw["Job_Name"]),
        user=user,
        account=account,
        queue=queue,
        priority=priority,
        exec_hosts=hosts if running else (),
        nodes_requested=nodes,
        cpus_requested=nodes * cpus_per_node,
        walltime_requested_seconds=walltime_s,
        walltime_used_seconds=walltime_used_s,
        eligible_ns=eligible_ns,
        eligible_seconds=eligible_s,
        start_ns=start_ns,
        end_ns=end_ns,
        exit_status=exit_code,
        comment=comment,
        raw_json=json.dumps(raw),
    )
