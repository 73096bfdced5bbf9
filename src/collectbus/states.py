"""The neutral states of scheduler jobs and reservations, shared by PBS and Slurm.

Kept apart from :mod:`collectbus.records` (which re-exports them) so that a
command offering them as ``--state`` choices does not build the record types
(docs/architecture.md, "The CLI's start-up").
"""

from __future__ import annotations

JOB_STATES = (
    "queued",  # waiting to be eligible or to start (PBS Q, W, T; Slurm PENDING)
    "held",  # held by a user, an operator or the system (PBS H; Slurm held PENDING)
    "running",  # PBS R, E, B (array with running subjobs); Slurm RUNNING, COMPLETING
    "suspended",  # PBS S, U; Slurm SUSPENDED, STOPPED
    "completed",  # finished with exit status 0
    "failed",  # finished with a non-zero exit status or a node failure
    "cancelled",  # deleted or cancelled, before or while running
    "timeout",  # killed at its walltime limit (PBS Exit_status -29; Slurm TIMEOUT)
    "disappeared",  # gone from the scheduler with no end seen by collectbus
    "unknown",
)
"""Neutral job states. The last four before ``unknown`` are final states."""

FINAL_JOB_STATES = frozenset({"completed", "failed", "cancelled", "timeout"})


RESERVATION_STATES = (
    "unconfirmed",  # asked for, not confirmed yet (PBS RESV_NONE, RESV_UNCONFIRMED)
    "confirmed",  # confirmed, its period not begun (PBS RESV_CONFIRMED; Slurm INACTIVE)
    "running",  # within its period (PBS RESV_RUNNING, RESV_TIME_TO_RUN; Slurm ACTIVE)
    "degraded",  # some of its nodes lost (PBS RESV_DEGRADED, RESV_IN_CONFLICT)
    "ended",  # its period is over (PBS RESV_FINISHED; gone from the listing after its end)
    "deleted",  # deleted (PBS RESV_BEING_DELETED, RESV_DELETED, RESV_DELETING_JOBS)
    "disappeared",  # gone from a complete listing before its end, no deletion seen
    "unknown",
)
"""Neutral reservation states; ``ended``, ``deleted`` and ``disappeared`` are final."""

FINAL_RESERVATION_STATES = frozenset({"ended", "deleted", "disappeared"})
