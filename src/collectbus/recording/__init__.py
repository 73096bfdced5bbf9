"""Recording host metrics of many hosts while something runs (``collectbus record``).

:class:`Recorder` samples this host through procfs and other hosts over SSH,
on the ticks of one bus; :class:`TimeSeriesData` is the result, written as a
JSON file in the shape of MLCommons storage's ``TimeSeriesData``
(:mod:`collectbus.recording.timeseries`), each sample with its
:class:`SampleExtras`. :mod:`collectbus.mlperf` offers the same recorder under
MLCommons' own names.
"""

from __future__ import annotations

from collectbus.recording.extras import SampleExtras
from collectbus.recording.recorder import Recorder, is_local
from collectbus.recording.timeseries import HostErrors, TimeSeriesData, load, write

__all__ = ["HostErrors", "Recorder", "SampleExtras", "TimeSeriesData", "is_local", "load", "write"]
