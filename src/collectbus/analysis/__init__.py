"""Stored history as pandas DataFrames (the only package that imports pandas).

- :func:`samples`: one host table, recent rows and chunks merged;
- :func:`rates`: CPU %, memory, disk and network bytes/s and load per host and tick;
- :mod:`.families`: every counter as a rate, by family (CPU states per CPU,
  ``iostat -x`` per disk, network per interface, memory and paging, PSI,
  cgroup, uptime), on stored samples or samples in memory;
- :mod:`.views`: the families as ``collectbus host --metric`` shows them, downsampled.
"""

from __future__ import annotations

from collectbus.analysis.frames import samples
from collectbus.analysis.host import rates

__all__ = ["rates", "samples"]
