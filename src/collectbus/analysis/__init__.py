"""Stored history as pandas DataFrames (the only package that imports pandas).

- :func:`samples`: one host table, recent rows and chunks merged;
- :func:`rates`: CPU %, memory, disk and network bytes/s and load per host and tick;
- :mod:`.families`: every counter as a rate, by family (CPU states per CPU,
  ``iostat -x`` per disk, network per interface, memory and paging, PSI,
  cgroup, uptime), on stored samples or samples in memory;
- :mod:`.views`: the families as ``collectbus host --metric`` shows them, downsampled;
- :mod:`.summary`: the rows of :func:`rates` in plain Python, for the command line.

The package imports pandas only when one of its frames is asked for.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collectbus.analysis.frames import samples
    from collectbus.analysis.host import rates

__all__ = ["rates", "samples"]

# Loaded on first use: :mod:`.summary` serves the command line without pandas.
_LAZY = {"rates": "collectbus.analysis.host", "samples": "collectbus.analysis.frames"}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
