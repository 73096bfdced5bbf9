"""Realistic records for tests and benchmarks: ``hosts`` (host samples and
/proc trees) and ``schedulers`` (PBS and Slurm jobs, nodes and queues)."""
