"""Scheduler records as ``jobs`` rows: values made storable, personal fields scrubbed.

A row is what goes into ``jobs``, in :data:`~collectbus.store.jobrows.JOB_COLUMNS`
order. Every text value is made storable
(:func:`collectbus.store.jobrows.clean_text`), and a number outside the signed
64-bit range is stored as NULL (the one value rule, :mod:`collectbus.values`).
Each repair is one line naming the cluster, the job and the field, returned
to the caller to count and log; the record is still stored.

Scrubbing (``[privacy] scrub = true``) applies to the raw payload only: every
value whose key is in :data:`SCRUBBED_KEYS` (compared without case, at any
depth; ``name`` only at the top, ``user`` and ``group`` only when they hold
a value rather than an object such as Slurm's CPU ``time.user``) is replaced
by ``"[scrubbed]"``. That covers the owner and user names,
accounts and projects, job and reservation names, e-mail addresses, comments, the job's
environment (PBS ``Variable_List``, Slurm ``environment``), its paths and
command line. The ``username``, ``account``, ``name`` and ``comment`` columns
are kept, because wait times and efficiency are studied per user and project.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from collectbus.records import JobRecord
from collectbus.store.jobrows import (
    COL,
    JOB_COLUMNS,
    KEY_LIMIT,
    LONG_TEXT_LIMIT,
    RAW_LIMIT,
    TEXT_LIMIT,
    TRACKED_INDEX,
    clean_text,
)
from collectbus.values import fits_int64

SCRUBBED = "[scrubbed]"

#: Keys of the raw payload scrubbed when ``privacy.scrub`` is true (PBS, then Slurm).
SCRUBBED_KEYS = frozenset(
    k.lower()
    for k in (
        # PBS Pro / OpenPBS (qstat -f)
        "Job_Owner",
        "Job_Name",
        "Account_Name",
        "project",
        "euser",
        "egroup",
        "group_list",
        "User_List",
        "Mail_Users",
        "comment",
        "Variable_List",
        "Output_Path",
        "Error_Path",
        "jobdir",
        "Submit_arguments",
        "Shell_Path_List",
        "Submit_Host",
        # PBS reservations (pbs_rstat -f)
        "Reserve_Owner",
        "Reserve_Name",
        "Authorized_Users",
        "Authorized_Groups",
        # Slurm (squeue/sacct --json, scontrol)
        "user",
        "user_name",
        "user_id",
        "group",
        "group_id",
        "account",
        "association",
        "name",
        "mail_user",
        "wckey",
        "environment",
        "working_directory",
        "current_working_directory",
        "command",
        "submit_line",
        "script",
        "standard_output",
        "standard_error",
        "standard_input",
        "admin_comment",
        "system_comment",
        # Slurm reservations (scontrol show reservation)
        "ReservationName",
        "Users",
        "Groups",
        "Accounts",
    )
)

# JobRecord fields copied as they are, after the key, scheduler and state.
_NUMBERS = JOB_COLUMNS[COL["nodes_requested"] : COL["exit_signal"] + 1]
_SHORT_TEXT = ("native_state", "substate", "name", "account", "queue", "array_parent", "comment")


def _clean_json(value: object, limit: int) -> object:
    if isinstance(value, str):
        return clean_text(value, limit)[0]
    if isinstance(value, dict):
        return {str(k): _clean_json(v, limit) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean_json(v, limit) for v in value]
    return value


#: Keys that are personal only when they hold a value: Slurm's ``time.user``
#: and ``time.system`` are CPU times, ``{"seconds": ..., "microseconds": ...}``.
_UNLESS_MAPPING = frozenset({"user", "group"})


#: Keys that are personal only at the top of a job: deeper, ``name`` names
#: trackable resources (Slurm ``tres``) and job steps.
_TOP_LEVEL_ONLY = frozenset({"name"})


def _scrubbed(key: str, value: object, depth: int) -> bool:
    lowered = key.lower()
    if lowered not in SCRUBBED_KEYS:
        return False
    if lowered in _TOP_LEVEL_ONLY and depth > 0:
        return False
    return not (lowered in _UNLESS_MAPPING and isinstance(value, dict))


def scrub_value(value: object, depth: int = 0) -> object:
    """``value`` (parsed JSON) with every scrubbed key's value replaced."""
    if isinstance(value, dict):
        return {
            k: (SCRUBBED if _scrubbed(k, v, depth) else scrub_value(v, depth + 1))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [scrub_value(v, depth) for v in value]
    return value


def prepare_raw(raw: str, *, scrub: bool) -> tuple[str, str | None]:
    """The raw payload as stored: scrubbed if asked, within :data:`RAW_LIMIT`."""
    if not scrub and len(raw) <= RAW_LIMIT:
        text, problem = clean_text(raw, RAW_LIMIT)
        return text, problem
    try:
        parsed = json.loads(raw)
    except ValueError:
        # Unparseable text cannot be scrubbed field by field: keep none of it.
        return json.dumps({"collectbus_error": "raw payload is not JSON"}), "not JSON, dropped"
    problem = None
    if len(raw) > RAW_LIMIT:
        parsed = _clean_json(parsed, TEXT_LIMIT)
        problem = f"{len(raw):,} characters, long strings truncated"
    if scrub:
        parsed = scrub_value(parsed)
    text = json.dumps(parsed, separators=(",", ":"))
    if len(text) > RAW_LIMIT:
        return json.dumps({"collectbus_error": "raw payload too large"}), "too large, dropped"
    return text, problem


def job_row(
    record: JobRecord,
    submit_ns: int,
    first_seen_ns: int,
    *,
    scrub: bool,
    report: Callable[[str, str], None],
) -> list[object]:
    """The ``jobs`` row of ``record``, in :data:`JOB_COLUMNS` order.

    ``report(field, problem)`` is called for each value that had to be repaired.
    """
    row: list[object] = [None] * len(JOB_COLUMNS)
    row[0], row[1], row[2] = record.cluster, record.job_id, submit_ns
    for name in ("scheduler", "state", *_SHORT_TEXT):
        value = getattr(record, name)
        if value is not None:
            value, problem = clean_text(value, TEXT_LIMIT)
            if problem:
                report(name, problem)
        row[COL[name]] = value
    user = record.user
    if user is not None:
        user, problem = clean_text(user, TEXT_LIMIT)
        if problem:
            report("user", problem)
    row[COL["username"]] = user
    for name in ("priority", *_NUMBERS):
        number = getattr(record, name)
        if number is not None and not fits_int64(number):
            report(name, f"{number} does not fit a 64-bit integer, stored as NULL")
            number = None
        row[COL[name]] = number
    for name, value in (
        ("exec_hosts", ",".join(record.exec_hosts) if record.exec_hosts else None),
        ("exec_vnode", record.exec_vnode),
    ):
        if value is not None:
            value, problem = clean_text(value, LONG_TEXT_LIMIT)
            if problem:
                report(name, problem)
        row[COL[name]] = value
    row[COL["first_seen_ns"]] = first_seen_ns
    row[COL["last_seen_ns"]] = record.observed_ns
    raw, problem = prepare_raw(record.raw_json, scrub=scrub)
    if problem:
        report("raw_json", problem)
    row[COL["raw_json"]] = raw
    return row


def tracked_text(row: list[object] | tuple[object, ...]) -> tuple[str | None, ...]:
    """The tracked fields of a row as the text ``job_history`` keeps."""
    return tuple(None if row[i] is None else str(row[i]) for i in TRACKED_INDEX)


def _text_key_problem(name: str, value: str) -> str | None:
    if not value:
        return f"empty {name}"
    if len(value) > KEY_LIMIT:
        return f"{name} longer than {KEY_LIMIT} characters"
    if clean_text(value, KEY_LIMIT)[1] is not None:
        return f"{name} is not valid UTF-8 text"
    return None


def key_problem_of_cluster(cluster: str) -> str | None:
    """Why no record of ``cluster`` can be stored, or None."""
    return _text_key_problem("cluster", cluster)


def key_problem(record: JobRecord) -> str | None:
    """Why a record cannot be stored at all, or None."""
    return _text_key_problem("cluster", record.cluster) or _text_key_problem(
        "job_id", record.job_id
    )
