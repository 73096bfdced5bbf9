"""Kernel counter deltas, with wrap and reset detection.

Counters in /proc only grow, until the host reboots, a device is re-created,
or a 32-bit counter wraps. The rules, in order, for one step ``prev -> cur``:

1. ``reset`` (boot time changed, device gone in between, first sample): no delta;
2. ``cur >= prev``: ``cur - prev``;
3. ``clamp`` (CPU ticks): ``0``. ``man 5 proc`` warns that iowait, and on some
   kernels idle, can go backwards a little; psutil clamps such steps to zero;
4. ``prev < 2**32`` and the wrapped increase ``cur - prev + 2**32`` is below
   ``2**31``: a 32-bit counter wrapped (some drivers still keep 32-bit net
   counters). A larger "increase" is far likelier a re-created device whose
   counter restarted from a smaller value than a counter that ran through
   more than half its range in one step;
5. otherwise an unexplained reset: no delta.

:func:`counter_delta` applies them to arrays (NumPy), :func:`counter_step`
to one step in plain Python (:mod:`collectbus.analysis.summary`); NumPy is
imported only by the first.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

WRAP_32 = 2**32
#: The largest increase across a wrap that is still read as a wrap.
MAX_WRAPPED_INCREASE = 2**31


def counter_delta(
    prev: npt.ArrayLike, cur: npt.ArrayLike, reset_mask: npt.ArrayLike, *, clamp: bool = False
) -> npt.NDArray[np.float64]:
    """The increase of each counter from ``prev`` to ``cur``; NaN where unknown."""
    import numpy as np

    before = np.asarray(prev, dtype=np.int64)
    after = np.asarray(cur, dtype=np.int64)
    reset = np.asarray(reset_mask, dtype=bool)
    delta = after - before
    backwards = delta < 0
    out = delta.astype(np.float64)
    if clamp:
        out[backwards] = 0.0
    else:
        wrapped = backwards & (before < WRAP_32) & (delta + WRAP_32 < MAX_WRAPPED_INCREASE)
        out[wrapped] += WRAP_32
        out[backwards & ~wrapped] = np.nan
    out[reset] = np.nan
    return out


def counter_step(prev: int, cur: int, *, clamp: bool = False) -> float:
    """The increase from ``prev`` to ``cur`` by rules 2 to 5 (rule 1 is the
    caller's); NaN where unknown. The same float as :func:`counter_delta`."""
    delta = cur - prev
    if delta >= 0:
        return float(delta)
    if clamp:
        return 0.0
    if prev < WRAP_32 and delta + WRAP_32 < MAX_WRAPPED_INCREASE:
        return float(delta) + WRAP_32
    return math.nan
