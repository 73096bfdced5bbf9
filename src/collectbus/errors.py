"""The one exception tree of collectbus.

Every error the package raises on purpose derives from :class:`CollectBusError`,
so a caller can catch the whole family at once, or one branch of it::

    CollectBusError
    ├── ConfigError            bad or missing configuration; names the key
    ├── CollectError           a source could not be collected
    │   ├── ParseError         malformed input; names the source and the line
    │   ├── CommandFailed      a command exited non-zero (exit code, stderr tail)
    │   ├── CommandTimeout     a command ran past its deadline and was killed
    │   └── CollectorTimeout   a collector ran past its bus timeout
    ├── StoreError             the database refused or could not be reached
    │   └── SchemaError        the schema is missing or at the wrong revision
    ├── BusError               the bus was misused (unknown collector, stopped bus)
    └── DaemonError            the daemon could not be started or stopped

Backend exceptions (``OSError``, SQLAlchemy, psycopg) are mapped to this tree at
the boundary where they occur, with ``raise ... from err`` so the cause stays.
Every message is one line that names its source, so it can be logged as is.
"""

from __future__ import annotations


class CollectBusError(Exception):
    """Root of every error collectbus raises on purpose."""

    hint: str = ""

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        if hint:
            self.hint = hint


class ConfigError(CollectBusError):
    """The configuration is invalid; the message names the key."""


class CollectError(CollectBusError):
    """A source could not be collected."""

    def __init__(self, source: str, message: str, *, hint: str = "") -> None:
        super().__init__(f"{source}: {message}", hint=hint)
        self.source = source


class ParseError(CollectError):
    """Malformed input, with the source (file or command) and the line number."""

    def __init__(self, source: str, line: int | None, message: str) -> None:
        where = f"{source}:{line}" if line is not None else source
        CollectBusError.__init__(self, f"{where}: {message}")
        self.source = source
        self.line = line


class CommandFailed(CollectError):
    """A command exited with a non-zero status."""

    def __init__(self, command: str, returncode: int, stderr_tail: str) -> None:
        tail = stderr_tail.strip().splitlines()[-1] if stderr_tail.strip() else "no stderr"
        super().__init__(command, f"exited with status {returncode}: {tail}")
        self.returncode = returncode
        self.stderr_tail = stderr_tail


class CommandTimeout(CollectError):
    """A command ran past its deadline and was killed."""

    def __init__(self, command: str, timeout_s: float) -> None:
        super().__init__(command, f"timed out after {timeout_s:g} s and was killed")
        self.timeout_s = timeout_s


class CollectorTimeout(CollectError):
    """A collector ran past the timeout the bus gave it."""

    def __init__(self, collector: str, timeout_s: float) -> None:
        super().__init__(collector, f"collection took longer than {timeout_s:g} s")
        self.timeout_s = timeout_s


class StoreError(CollectBusError):
    """The database refused an operation or could not be reached."""


class SchemaError(StoreError):
    """The database schema is missing or not at the expected revision."""


class BusError(CollectBusError):
    """The collection bus was used wrongly."""


class DaemonError(CollectBusError):
    """The daemon could not be started, found or stopped."""


class RecordError(CollectBusError):
    """A recording (``collectbus record``) was misused or its result is unreadable."""
