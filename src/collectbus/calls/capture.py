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
- ``json`` (``serialize=``) gives each argument and the result as JSON, so
  that entries hand them back as values (lists, dicts, numbers), as
  smartswitch's own history does. A value JSON has no form for goes through
  the serializer: ``str`` for ``serialize=True``, else the user's function, as
  ``json.dumps(default=...)`` uses it. A value whose JSON is longer than the
  limit is kept as a JSON string of its cut text, so every value stays valid
  JSON. json.dumps formats the whole value before it is cut: give
  ``serialize=`` to handlers whose arguments are small.

Each argument is formatted on its own and kept as a tuple of texts; the one
line of a record (``1, 'x', user=dict[3]``) is joined when it is queried.
Arguments past the limit (counted in characters over all of them) are left
out, and a ``…`` marks where.

Arguments are formatted when the call has returned, so a mutable argument
shows the state the call left it in.

User code runs here (``__repr__``, ``__str__``, the serializer) and may raise
anything. A value that cannot be formatted becomes ``<unrepresentable T: E>``
(a JSON string of it with ``serialize=``) and the failure is counted by the
caller; it never reaches the wrapped call.

Text that is not valid Unicode (an exception message holding lone surrogates,
as ``os.fsdecode`` makes of undecodable file names) has those characters
written as ``\\udcff`` escapes: a database refuses them, and the record would
be lost at the next flush.
"""

from __future__ import annotations

import json
import reprlib
import threading
import traceback
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Literal

Capture = Literal["none", "summary", "repr", "json"]
CAPTURES: tuple[Capture, ...] = ("none", "summary", "repr", "json")
#: Turns a value JSON has no form for into one it has (``json.dumps(default=...)``).
Serializer = Callable[[object], object]
#: The arguments of one call as formatted: positional texts, (name, text) pairs.
ArgTexts = tuple[tuple[str, ...], tuple[tuple[str, str], ...]]
#: Marks arguments left out past the limit.
MORE = "…"

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


def clean(text: str) -> str:
    """``text`` with characters that UTF-8 cannot encode (lone surrogates) escaped."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def args_line(texts: ArgTexts, limit: int) -> str:
    """The one line of a record: ``1, 'x', user=dict[3]``, cut to ``limit``."""
    positional, named = texts
    parts = [*positional, *(MORE if k == MORE else f"{k}={v}" for k, v in named)]
    return cut(", ".join(parts), limit)


def args_document(texts: ArgTexts) -> str:
    """The arguments captured as JSON, as one document: ``{"args": [...], "kwargs": {...}}``."""
    positional, named = texts
    items = ", ".join(p if p != MORE else json.dumps(MORE) for p in positional)
    pairs = ", ".join(f"{json.dumps(k)}: {v if k != MORE else json.dumps(v)}" for k, v in named)
    return f'{{"args": [{items}], "kwargs": {{{pairs}}}}}'


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

    def __init__(
        self,
        capture: Capture,
        max_text: int,
        failures: FailureCount,
        serializer: Serializer = str,
    ) -> None:
        self.capture = capture
        self.max_text = max_text
        self.failures = failures
        self.serializer = serializer
        self._one: Callable[[object], str] = {
            "summary": self._summary,
            "json": self._json,
        }.get(capture, _REPR.repr)

    def _summary(self, value: object) -> str:
        name = type(value).__name__
        # Only builtin containers: len() of another type is user code and may be slow.
        return f"{name}[{len(value)}]" if isinstance(value, _SIZED) else name

    def _json(self, value: object) -> str:
        # ensure_ascii: lone surrogates become \u escapes, which is valid JSON.
        text = json.dumps(value, default=self.serializer, ensure_ascii=True)
        return text if len(text) <= self.max_text else json.dumps(cut(text, self.max_text))

    def _safe(self, value: object) -> str:
        try:
            text = self._one(value)
            # JSON is bounded by _json, where a cut cannot break it.
            return text if self.capture == "json" else clean(cut(text, self.max_text))
        # Any exception can come out of a user's __repr__ or serializer (TypeError,
        # ValueError for a circular reference...); the call must not see it.
        except Exception as err:  # noqa: BLE001 - counted, and marked in the text
            self.failures.add()
            marker = f"<unrepresentable {type(value).__name__}: {type(err).__name__}>"
            return json.dumps(marker) if self.capture == "json" else marker

    def args(
        self, args: tuple[object, ...], kwargs: Mapping[str, object] | None
    ) -> ArgTexts | None:
        """Each argument as text, or None when nothing is captured. Arguments
        past ``max_text`` characters in all are left out, marked by ``…``."""
        if self.capture == "none":
            return None
        room = self.max_text
        positional: list[str] = []
        for a in args:
            if room <= 0:
                positional.append(MORE)
                break
            text = self._safe(a)
            positional.append(text)
            room -= len(text) + 2
        named: list[tuple[str, str]] = []
        for k, v in (kwargs or {}).items():
            if room <= 0:
                named.append((MORE, MORE))
                break
            text = self._safe(v)
            named.append((clean(k), text))
            room -= len(k) + len(text) + 3
        return tuple(positional), tuple(named)

    def value(self, value: object) -> str | None:
        """A result, or None when nothing is captured."""
        if self.capture == "none":
            return None
        return self._safe(value)

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
        tb = clean(short_traceback(exc.__traceback__, skip))
        return clean(kind), clean(cut(message, self.max_text)), tb


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
