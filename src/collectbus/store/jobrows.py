"""Scheduler rows as the store keeps them: the ``jobs`` columns and storable text.

Every text value is made storable before it is written (:func:`clean_text`):

- a value that is not valid UTF-8 (a ``str`` holding lone surrogates, as
  ``bytes.decode(errors="surrogateescape")`` leaves them) has the bad bytes
  replaced by U+FFFD;
- NUL characters are removed (PostgreSQL ``text`` cannot hold them);
- a value longer than its limit (:data:`TEXT_LIMIT`, or :data:`LONG_TEXT_LIMIT`
  for host lists, :data:`RAW_LIMIT` for the raw payload) is truncated, and
  says so at its end.

The rows themselves are built by the job tracker (:mod:`collectbus.jobtrack.rows`).
"""

from __future__ import annotations

#: Longest text kept in a plain column (names, states, comments).
TEXT_LIMIT = 4096
#: Longest host list (``exec_hosts``, ``exec_vnode``): a 10,000-node job's list fits.
LONG_TEXT_LIMIT = 1 << 20
#: Longest raw payload; a longer one has its long strings truncated.
RAW_LIMIT = 4 << 20
#: The longest cluster or job id that is accepted at all.
KEY_LIMIT = 256

JOB_COLUMNS = (
    "cluster",
    "job_id",
    "submit_ns",
    "scheduler",
    "state",
    "native_state",
    "substate",
    "name",
    "username",
    "account",
    "queue",
    "priority",
    "array_parent",
    "exec_hosts",
    "exec_vnode",
    "nodes_requested",
    "cpus_requested",
    "gpus_requested",
    "mem_requested_bytes",
    "walltime_requested_seconds",
    "walltime_used_seconds",
    "cpu_used_seconds",
    "mem_used_bytes",
    "eligible_ns",
    "eligible_seconds",
    "start_ns",
    "end_ns",
    "exit_status",
    "exit_signal",
    "comment",
    "first_seen_ns",
    "last_seen_ns",
    "raw_json",
)
COL = {name: i for i, name in enumerate(JOB_COLUMNS)}
#: Fields whose every change is a ``job_history`` row, in this order.
TRACKED = ("state", "substate", "queue", "priority", "exec_hosts", "comment")
TRACKED_INDEX = tuple(COL[f] for f in TRACKED)


def clean_text(value: str, limit: int) -> tuple[str, str | None]:
    """``value`` made storable, and what was repaired (None if nothing)."""
    problem = None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        problem = "not valid UTF-8, bad bytes replaced"
    if "\x00" in value:
        value = value.replace("\x00", "")
        problem = "NUL characters removed"
    if len(value) > limit:
        problem = f"{len(value):,} characters, truncated to {limit:,}"
        suffix = f" ...[{len(value):,} characters, truncated]"
        value = value[: limit - len(suffix)] + suffix
    return value, problem
