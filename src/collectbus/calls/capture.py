"""Arguments, results and exceptions as short text, made safely.

A call record never holds a live reference to what the call was given or
returned: that would keep request objects, buffers or database rows alive for
as long as the record stays in the history, and make every garbage collection
walk them. So they are turned into text at once, and the text is bounded:

- ``summary`` gives type names and sizes, never values: ``int, str[12],
  user=dict[3]``. It is cheap and leaks no data into the store.
- ``repr`` gives :mod:`reprlib` reprs, which stop formatting a container after
  a few items (a list of 1,000 ints costs as much as a list of 6) and cut long
  strings before formatting them. An object with its own ``__repr__`` is still
  formatted in full and then cut: reprlib cannot bound that.

Arguments are formatted when the call has returned, so a mutable argument
shows the state the call left it in.

User code runs here (``__repr__``, ``__str__``) and may raise anything. A value that cannot be formatted becomes ``<unrepresentable T: E>``
and the failure is counted by the caller; it never reaches the wrapped call.
"""

from __future__ import annotations

import reprlib
import threading
import traceback
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Literal

Capture = Literal["none", "summary", "repr"]

#: The longest text kept for the arguments, the result or an error message.
DEFAULT_MAX_TEXT = 200
#: Innermost frames kept from a traceback.
TRACEBACK_FRAMES = 8

_SIZED = (str, bytes, bytearray, list, tuple, dict, set, frozenset)


def _reprlib() -> reprlib.Repr:
    r = reprlib.Repr()
    r.maxlevel = 2
    r.maxlist = r.maxtuple = r.maxset = r.maxfrozenset = r.maxdeque = r.maxarray = 6
    r.maxdict = 4
    r.maxstring = r.maxother = 80
    r.maxlong = 40
    return r


_REPR = _reprlib()


def cut(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, marked with an ellipsis when cut."""
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


class FailureCount:
    """A counter of formatting failures, safe across threads.

    Failures are rare, so a lock is fine here: it is never taken on the path
    of a call that formats nothing.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value = 0

    def add(self, n: int = 1) -> None:
        with self._lock:
            self._value += n

    @property
    def value(self) -> int:
        return self._value


class Formatter:
    """Turns values into bounded text the way a collector was configured."""

    def __init__(self, capture: Capture, max_text: int, failures: FailureCount) -> None:
        self.capture = capture
        self.max_text = max_text
        self.failures = failures
        self._one: Callable[[object], str] = self._summary if capture == "summary" else _REPR.repr

    def _summary(self, value: object) -> str:
        name = type(value).__name__
        # Only builtin containers: len() of another type is user code and may be slow.
        return f"{name}[{len(value)}]" if isinstance(value, _SIZED) else name

    def _safe(self, value: object) -> str:
        try:
            return self._one(value)
        # Any exception can come out of a user's __repr__; the call must not see it.
        except Exception as err:  # noqa: BLE001 - counted, and marked in the text
            self.failures.add()
            return f"<unrepresentable {type(value).__name__}: {type(err).__name__}>"

    def args(self, args: tuple[object, ...], kwargs: Mapping[str, object] | None) -> str | None:
        """The arguments as one line, or None when nothing is captured."""
        if self.capture == "none":
            return None
        parts = [self._safe(a) for a in args]
        if kwargs:
            parts.extend(f"{k}={self._safe(v)}" for k, v in kwargs.items())
        return cut(", ".join(parts), self.max_text)

    def value(self, value: object) -> str | None:
        """A result, or None when nothing is captured."""
        if self.capture == "none":
            return None
        return cut(self._safe(value), self.max_text)

    def error(self, exc: BaseException, skip: Callable[[str], bool]) -> tuple[str, str, str]:
        """(type, message, traceback) of an exception; frames whose file ``skip``
        accepts (the wrappers' own) are left out."""
        cls = type(exc)
        module = cls.__module__
        kind = cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"
        try:
            message = str(exc)
        except Exception as err:  # noqa: BLE001 - a user's __str__; counted and marked
            self.failures.add()
            message = f"<unprintable {cls.__name__}: {type(err).__name__}>"
        return kind, cut(message, self.max_text), short_traceback(exc.__traceback__, skip)


def short_traceback(tb: TracebackType | None, skip: Callable[[str], bool]) -> str:
    """The innermost frames as ``file:line in function`` lines, outermost first.

    No source lines: reading them would mean file I/O on the error path.
    """
    frames = [
        f"{frame.f_code.co_filename}:{lineno} in {frame.f_code.co_qualname}"
        for frame, lineno in traceback.walk_tb(tb)
        if not skip(frame.f_code.co_filename)
    ]
    return "\n".join(frames[-TRACEBACK_FRAMES:])
