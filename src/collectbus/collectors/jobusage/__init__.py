"""Per-job usage on a compute node: each batch job's CPU time, memory, I/O
and processes, from its cgroup (Slurm, PBS) or, without one, from its
processes. See ``README.md`` in this folder and :mod:`.collector`."""
