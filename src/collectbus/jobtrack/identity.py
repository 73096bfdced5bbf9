"""Which job a record belongs to: the identity contract of the job tracker.

Everything the tracker keeps and writes per job hangs on the answer: its
``jobs`` row, its ``job_history`` rows, whether it is new, changed or gone.
The contract is :func:`job_key`, and it is decided there only.
"""

from __future__ import annotations

from collections.abc import Mapping

from collectbus.records import JobRecord

#: A job within its cluster: ``(job_id, submit_ns)``. With the cluster, the
#: primary key of ``jobs``.
JobKey = tuple[str, int]

#: The submit time of a record that has none and names no known job: such a
#: record is refused (:func:`job_key`).
NO_SUBMIT = -(2**63)


def job_key(record: JobRecord, newest: Mapping[str, int]) -> JobKey:
    """The job ``record`` is a sighting of, within its cluster.

    - A job is its cluster, its id and its submit time. Schedulers reuse ids
      (PBS after a server restart or a wrap, Slurm after a database reset):
      the same id with another submit time is another job, with a row and a
      history of its own.
    - A record without a submit time (some PBS and Slurm listings leave it
      out) belongs to the newest job of that id known, ``newest[job_id]``:
      the submit times the tracker holds, and those the store holds once the
      tracker has looked them up (:meth:`JobTracker.track` looks up every id it
      does not hold before it decides). With none known, the key's submit time
      is :data:`NO_SUBMIT` and the record is refused.
    - The cluster is not in the key: the tracker keeps each cluster apart,
      and ``newest`` is that cluster's.

    Two records with the same key are the same job seen twice; a change of any
    stored field between them is an update, and a change of a tracked field a
    ``job_history`` row.
    """
    submit_ns = record.submit_ns
    if submit_ns is None:
        submit_ns = newest.get(record.job_id, NO_SUBMIT)
    return record.job_id, submit_ns
