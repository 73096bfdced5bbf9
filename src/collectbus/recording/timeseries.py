"""The result of a recording: :class:`TimeSeriesData`, and its JSON file.

The file has the shape of MLCommons storage's ``TimeSeriesData``
(``mlpstorage/rules/models.py``), so that tools reading those results read
these too, and the values MLCommons' collector would write:

- ``collection_interval_seconds``, ``start_time`` and ``end_time``
  (``YYYY-MM-DDTHH:MM:SSZ``, UTC), ``hosts_requested``;
- ``samples_by_host``: per host, its samples in time order, each in the shape
  of :mod:`collectbus.recording.mlcommons` (a failed round is a sample with only
  ``errors``);
- ``num_samples``: the number of samples in ``samples_by_host``, all hosts
  together; ``hosts_collected``: the hosts with at least one sample, failed
  rounds included (MLCommons' ``get_hosts_with_data``);
- ``collection_method``: MLCommons' rule, ``ssh`` when more than one host was
  collected, else ``local`` (how each host was read is in ``methods_by_host``).

collectbus adds one object, ``collectbus``, which MLCommons ignores: the exact
start and end (``*_ns``), how each host was read (``methods_by_host``), the
hosts with at least one good sample (``hosts_answered``), failed rounds per
host with the last error (``errors_by_host``), samples dropped by the
``max_samples`` cap (``dropped_samples``, and per host), rounds skipped because
a host's previous round was still running (``skipped_by_host``), and the
command that ran with its exit code when ``collectbus record`` ran one.

A file read back keeps every key: the samples' (see
:func:`~collectbus.recording.mlcommons.read_sample`) and any top-level key
this module does not know, which :meth:`TimeSeriesData.to_dict` writes again.
The file is written atomically, readable by all (``0666`` less the umask, as
``open()`` makes it).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from collectbus.errors import RecordError
from collectbus.recording.extras import NO_EXTRAS, SampleExtras
from collectbus.recording.mlcommons import (
    is_error_sample,
    iso_seconds,
    read_sample,
    sample_to_dict,
)
from collectbus.records import HostSample

__all__ = [
    "FORMAT",
    "HostErrors",
    "TimeSeriesData",
    "collection_method",
    "load",
    "load_document",
    "write",
    "write_document",
]

#: The value of ``collectbus.format`` in a result file.
FORMAT = "collectbus-timeseries/1"

# The top-level keys TimeSeriesData interprets; any other is kept in ``other``.
_KNOWN_KEYS = frozenset(
    {"collection_interval_seconds", "start_time", "end_time", "num_samples"}
    | {"samples_by_host", "collection_method", "hosts_requested", "hosts_collected", "collectbus"}
)


def collection_method(hosts_collected: Sequence[str]) -> str:
    """MLCommons' ``collection_method``: ``ssh`` when more than one host was collected."""
    return "ssh" if len(hosts_collected) > 1 else "local"


@dataclass(frozen=True, slots=True, kw_only=True)
class HostErrors:
    """The rounds in which one host failed as a whole."""

    count: int = 0
    last: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TimeSeriesData:
    """Every sample of every host of one recording, oldest first per host."""

    collection_interval_seconds: float
    start_time_ns: int
    end_time_ns: int
    samples_by_host: Mapping[str, tuple[HostSample, ...]]
    collection_method: str
    hosts_requested: tuple[str, ...]
    errors_by_host: Mapping[str, HostErrors] = field(default_factory=dict)
    dropped_by_host: Mapping[str, int] = field(default_factory=dict)
    #: Rounds a host missed because its previous round was still running.
    skipped_by_host: Mapping[str, int] = field(default_factory=dict)
    command: tuple[str, ...] | None = None
    exit_code: int | None = None
    #: Per host, what each sample carries besides its HostSample (aligned with
    #: ``samples_by_host``); a host missing here has none.
    extras_by_host: Mapping[str, tuple[SampleExtras, ...]] = field(default_factory=dict)
    #: How each host was read: ``local`` (procfs) or ``ssh``.
    methods_by_host: Mapping[str, str] = field(default_factory=dict)
    #: Top-level keys of a file read back that this class does not interpret.
    other: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for host, extras in self.extras_by_host.items():
            if len(extras) != len(self.samples_by_host.get(host, ())):
                raise RecordError(
                    f"{host}: {len(extras)} sample extras for "
                    f"{len(self.samples_by_host.get(host, ()))} samples"
                )

    @property
    def start_time(self) -> str:
        return iso_seconds(self.start_time_ns)

    @property
    def end_time(self) -> str:
        return iso_seconds(self.end_time_ns)

    @property
    def num_samples(self) -> int:
        """Samples of all hosts together, failed rounds included (as MLCommons counts)."""
        return sum(len(samples) for samples in self.samples_by_host.values())

    @property
    def hosts_collected(self) -> tuple[str, ...]:
        """The hosts with at least one sample, failed rounds included (as MLCommons lists them)."""
        return tuple(host for host in hosts_in_order(self) if self.samples_by_host.get(host))

    @property
    def hosts_answered(self) -> tuple[str, ...]:
        """The hosts with at least one good sample."""
        return tuple(
            host
            for host in hosts_in_order(self)
            if any(not is_error_sample(s) for s in self.samples_by_host.get(host, ()))
        )

    def extras(self, host: str) -> tuple[SampleExtras, ...]:
        """The extras of each of the host's samples (NO_EXTRAS where there are none)."""
        kept = self.extras_by_host.get(host)
        if kept is not None:
            return kept
        return (NO_EXTRAS,) * len(self.samples_by_host.get(host, ()))

    @property
    def dropped_samples(self) -> int:
        """Samples dropped, oldest first, to keep at most ``max_samples`` per host."""
        return sum(self.dropped_by_host.values())

    def good_samples(self, host: str) -> tuple[HostSample, ...]:
        """The host's samples without its failed rounds."""
        return tuple(s for s in self.samples_by_host.get(host, ()) if not is_error_sample(s))

    def to_dict(self) -> dict[str, object]:
        """The JSON document (see the module docstring)."""
        extras: dict[str, object] = {
            "format": FORMAT,
            "start_time_ns": self.start_time_ns,
            "end_time_ns": self.end_time_ns,
            "methods_by_host": dict(self.methods_by_host),
            "hosts_answered": list(self.hosts_answered),
            "errors_by_host": {
                host: {"count": e.count, "last": e.last} for host, e in self.errors_by_host.items()
            },
            "dropped_samples": self.dropped_samples,
            "dropped_by_host": dict(self.dropped_by_host),
            "skipped_by_host": dict(self.skipped_by_host),
        }
        if self.command is not None:
            extras["command"] = list(self.command)
            extras["exit_code"] = self.exit_code
        doc: dict[str, object] = {
            "collection_interval_seconds": self.collection_interval_seconds,
            "start_time": self.start_time,
            "end_time": self.end_time,
            "num_samples": self.num_samples,
            "samples_by_host": {
                host: [
                    sample_to_dict(s, e) for s, e in zip(samples, self.extras(host), strict=True)
                ]
                for host, samples in self.samples_by_host.items()
            },
            "collection_method": self.collection_method,
            "hosts_requested": list(self.hosts_requested),
            "hosts_collected": list(self.hosts_collected),
            "collectbus": extras,
        }
        for key, value in self.other.items():
            doc.setdefault(key, value)
        return doc

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "result") -> TimeSeriesData:
        """Read a document written by :meth:`to_dict` (or by MLCommons storage)."""
        try:
            extras = data.get("collectbus") or {}
            by_host = data["samples_by_host"]
            read = {
                str(host): [
                    read_sample(s, source=f"{source}: samples_by_host.{host}[{i}]", host=str(host))
                    for i, s in enumerate(items)
                ]
                for host, items in by_host.items()
            }
            samples = {host: tuple(s for s, _ in pairs) for host, pairs in read.items()}
            start_ns = extras.get("start_time_ns")
            end_ns = extras.get("end_time_ns")
            return cls(
                collection_interval_seconds=float(data["collection_interval_seconds"]),
                start_time_ns=int(start_ns)
                if start_ns is not None
                else _iso_ns(data["start_time"]),
                end_time_ns=int(end_ns) if end_ns is not None else _iso_ns(data["end_time"]),
                samples_by_host=samples,
                collection_method=str(data.get("collection_method", "unknown")),
                hosts_requested=tuple(str(h) for h in data.get("hosts_requested", samples)),
                errors_by_host={
                    str(h): HostErrors(count=int(e["count"]), last=e.get("last"))
                    for h, e in (extras.get("errors_by_host") or {}).items()
                },
                dropped_by_host={
                    str(h): int(n) for h, n in (extras.get("dropped_by_host") or {}).items()
                },
                skipped_by_host={
                    str(h): int(n) for h, n in (extras.get("skipped_by_host") or {}).items()
                },
                command=tuple(extras["command"]) if "command" in extras else None,
                exit_code=extras.get("exit_code"),
                extras_by_host={host: tuple(e for _, e in pairs) for host, pairs in read.items()},
                methods_by_host={
                    str(h): str(m) for h, m in (extras.get("methods_by_host") or {}).items()
                },
                other={k: v for k, v in data.items() if k not in _KNOWN_KEYS},
            )
        except RecordError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise RecordError(
                f"{source}: not a time-series result: {type(err).__name__}: {err}",
                hint="a result file of collectbus record, or MLCommons storage's TimeSeriesData",
            ) from err


def _iso_ns(text: object) -> int:
    when = dt.datetime.strptime(str(text), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    return int(when.timestamp()) * 1_000_000_000


def write(data: TimeSeriesData, path: str | os.PathLike[str]) -> Path:
    """Write the result file atomically (a temporary file renamed into place)."""
    return write_document(data.to_dict(), path)


def write_document(doc: Mapping[str, object], path: str | os.PathLike[str]) -> Path:
    """Write a JSON document atomically, mode 0666 less the umask; RecordError naming the file."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        # mkstemp makes it 0600; a result is for everyone who may read the folder.
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(doc, out, indent=1)
            out.write("\n")
        os.replace(tmp, target)
    except OSError as err:
        raise RecordError(f"{target}: cannot write the result: {err.strerror or err}") from err
    return target


def _umask() -> int:
    """This process's umask, read without changing it (Linux 4.7+), else set and put back."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def load(path: str | os.PathLike[str]) -> TimeSeriesData:
    """Read a result file; RecordError naming the file if it is missing or malformed."""
    source = os.fspath(path)
    return TimeSeriesData.from_dict(load_document(source), source=source)


def load_document(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The JSON object of a result file; RecordError (one line, naming the file) if it is
    missing, not JSON (a truncated file: the line where it ends) or not an object."""
    source = os.fspath(path)
    try:
        with open(source, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as err:
        raise RecordError(f"{source}: cannot read: {err.strerror or err}") from err
    except json.JSONDecodeError as err:
        raise RecordError(f"{source}:{err.lineno}: not JSON: {err.msg}") from err
    except UnicodeDecodeError as err:
        raise RecordError(f"{source}: not JSON: not UTF-8 text ({err.reason})") from err
    if not isinstance(data, dict):
        raise RecordError(f"{source}: not a time-series result: the document is not an object")
    return data


def hosts_in_order(data: TimeSeriesData) -> Sequence[str]:
    """Requested hosts first, then any other host that has samples."""
    extra = [h for h in data.samples_by_host if h not in data.hosts_requested]
    return [*data.hosts_requested, *extra]
