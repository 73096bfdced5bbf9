"""Stored history as pandas DataFrames (the only package that imports pandas).

- :func:`samples`: one host table, recent rows and chunks merged;
- :func:`rates`: CPU %, memory, disk and network bytes/s and load per host and tick.
"""

from __future__ import annotations

from collectbus.analysis.frames import samples
from collectbus.analysis.host import rates

__all__ = ["rates", "samples"]
