"""What every wrapper of one collector is built from."""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass

from collectbus.calls.capture import Capture
from collectbus.calls.handler import Entry


class Switch:
    """The collector's on/off state, read by every wrapper on every call.

    A slotted attribute is the cheapest shared flag a wrapper can test; turning
    it off takes effect at each wrapper's next call.
    """

    __slots__ = ("on",)

    def __init__(self, on: bool) -> None:
        self.on = on


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """A collector's configuration, as the wrappers use it."""

    switch: Switch
    #: Monotonic nanoseconds: time.perf_counter_ns unless a test clock was given.
    clock: Callable[[], int]
    random: Callable[[], float]
    sample: float
    errors_always: bool
    slow_ns: int | None
    capture: Capture
    #: Set while a recorded call runs, when only outermost calls are recorded.
    active: ContextVar[bool] | None
    append: Callable[[Entry], None]
    #: Counts a call whose recording itself failed (list.append: a C call, so
    #: it still works at the recursion limit, where a Python call would not).
    lost: Callable[[int], None]

    @property
    def watch_sampled_out(self) -> bool:
        """Whether calls that sampling skips must still be timed."""
        return self.errors_always or self.slow_ns is not None
