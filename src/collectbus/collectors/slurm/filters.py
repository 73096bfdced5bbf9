"""Filters applied after parsing: ``squeue --json`` ignores ``-t``, ``-u`` and ``-j``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from collectbus.records import JobRecord

__all__ = ["filter_jobs"]


def filter_jobs(
    jobs: Iterable[JobRecord],
    *,
    users: Sequence[str] = (),
    states: Sequence[str] = (),
    job_ids: Sequence[str] = (),
) -> list[JobRecord]:
    """The jobs of these users, in these states, with these ids; an empty filter keeps all.

    ``states`` may name neutral states (``held``) or Slurm's (``PENDING``).
    ``job_ids`` match a job's id or its array parent (``9`` keeps ``9_1``, ``9_2``).
    """
    user_set, state_set, id_set = set(users), {s.lower() for s in states}, set(job_ids)
    return [
        job
        for job in jobs
        if (not user_set or job.user in user_set)
        and (not state_set or job.state in state_set or job.native_state.lower() in state_set)
        and (not id_set or job.job_id in id_set or job.array_parent in id_set)
    ]
