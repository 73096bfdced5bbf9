"""The job tracker: between the bus and the store, scheduler snapshots become
the rows and state changes to write.

Each collection of a batch scheduler (jobs, nodes, queues, the server) is
diffed against what the tracker holds of each job
(:mod:`collectbus.jobtrack.tracker`), and what changed becomes rows: new and
changed ``jobs`` rows, one ``job_history`` row per change of a tracked field,
the jobs gone from a complete listing, and the node, queue and server
snapshots that are due (:mod:`collectbus.jobtrack.snapshots`). The store
writes those rows and nothing else (:mod:`collectbus.store.jobtables`).

Which job a record is a sighting of is decided in one place,
:func:`collectbus.jobtrack.identity.job_key`. At start, and for a job it does
not hold, the tracker reads what the store holds, so a restart loses no
state change. :class:`~collectbus.jobtrack.writer.TrackedStore` puts the
tracker in front of a store; the pipeline's store writer writes through it.
"""
