"""Kernel counter deltas, with wrap and reset detection (NumPy only).

Counters in /proc only grow, until the host reboots, a device is re-created,
or a 32-bit counter wraps. The rules, in order, for one step ``prev -> cur``:

1. ``reset`` (boot time changed, device gone in between, first sample): no delta;
2. ``cur >= prev``: ``cur - prev``;
3. ``cur < prev`` and ``prev < 2**32`` and ``cur - prev + 2**32 >= 0``: a 32-bit
   counter wrapped (some drivers still keep 32-bit net counters): ``cur - prev + 2**32``;
4. otherwise an unexplained reset: no delta.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

WRAP_32 = 2**32


def counter_delta(
    prev: npt.ArrayLike, cur: npt.ArrayLike, reset_mask: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """The increase of each counter from ``prev`` to ``cur``; NaN where unknown."""
    before = np.asarray(prev, dtype=np.int64)
    after = np.asarray(cur, dtype=np.int64)
    reset = np.asarray(reset_mask, dtype=bool)
    delta = after - before
    backwards = delta < 0
    wrapped = backwards & (before < WRAP_32) & (delta + WRAP_32 >= 0)
    out = delta.astype(np.float64)
    out[wrapped] += WRAP_32
    out[(backwards & ~wrapped) | reset] = np.nan
    return out
