"""Serialisation of records, in one place: JSON and MessagePack.

Records carry no ``to_dict`` of their own. A record becomes a plain mapping
with a ``"type"`` tag naming its class; row tuples (``CpuRow``, ``DiskRow``,
...) become mappings of their fields, so the JSON reads well in a result file
or a pipe. Decoding rebuilds the exact record, so ``decode(encode(r)) == r``
for every record (tested with Hypothesis).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Mapping
from typing import Any, cast

import msgpack

from collectbus.errors import ParseError
from collectbus.records import (
    CallRecord,
    CgroupRow,
    CollectionEvent,
    CpuRow,
    DiskRow,
    HostInventory,
    HostSample,
    JobRecord,
    JobUsageSample,
    LoadRow,
    NetRow,
    NodeRecord,
    ProcessRow,
    ProcessSample,
    PsiRow,
    QueueRecord,
    Record,
    ReservationRecord,
    StatRow,
    SystemRecord,
    UptimeRow,
)

JsonValue = None | bool | int | float | str | list["JsonValue"] | dict[str, "JsonValue"]

RECORD_TYPES: dict[str, type[Record]] = {
    "HostSample": HostSample,
    "CollectionEvent": CollectionEvent,
    "CallRecord": CallRecord,
    "JobRecord": JobRecord,
    "NodeRecord": NodeRecord,
    "QueueRecord": QueueRecord,
    "SystemRecord": SystemRecord,
    "ReservationRecord": ReservationRecord,
    "HostInventory": HostInventory,
    "JobUsageSample": JobUsageSample,
    "ProcessSample": ProcessSample,
}

# Fields whose values are rows (NamedTuple) or tuples of rows, per record type.
_ROW_FIELDS: dict[str, Callable[..., tuple[object, ...]]] = {
    "cpu": CpuRow,
    "stat": StatRow,
    "disk": DiskRow,
    "net": NetRow,
    "load": LoadRow,
    "psi": PsiRow,
    "uptime": UptimeRow,
    "cgroup": CgroupRow,
}


def _plain(value: object) -> JsonValue:
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return {k: _plain(v) for k, v in zip(value._fields, value, strict=True)}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return cast(JsonValue, value)


def to_plain(record: Record) -> dict[str, JsonValue]:
    """A record as a mapping of plain values, tagged with its type."""
    out: dict[str, JsonValue] = {"type": type(record).__name__}
    for f in dataclasses.fields(record):
        out[f.name] = _plain(getattr(record, f.name))
    return out


def _row(cls: Callable[..., tuple[object, ...]], value: Mapping[str, Any]) -> tuple[object, ...]:
    return cls(**value)


def from_plain(data: Mapping[str, Any], *, source: str = "record") -> Record:
    """Rebuild a record from :func:`to_plain` output."""
    type_name = data.get("type")
    cls = RECORD_TYPES.get(type_name) if isinstance(type_name, str) else None
    if cls is None:
        raise ParseError(source, None, f"unknown record type {type_name!r}")
    kwargs: dict[str, Any] = {}
    try:
        for f in dataclasses.fields(cls):
            if f.name not in data:
                continue
            value = data[f.name]
            row_cls = (
                _ROW_FIELDS.get(f.name)
                if cls is HostSample
                else ProcessRow
                if cls is ProcessSample and f.name == "processes"
                else None
            )
            if value is None:
                kwargs[f.name] = None
            elif row_cls is not None and isinstance(value, Mapping):
                kwargs[f.name] = _row(row_cls, value)
            elif row_cls is not None:
                kwargs[f.name] = tuple(_row(row_cls, v) for v in value)
            elif isinstance(value, list):
                kwargs[f.name] = tuple(tuple(v) if isinstance(v, list) else v for v in value)
            else:
                kwargs[f.name] = value
        return cls(**kwargs)
    except (TypeError, ValueError) as err:
        raise ParseError(source, None, f"malformed {type_name}: {err}") from err


def dumps_json(record: Record) -> str:
    """One record as one line of JSON; a NaN or infinite float is written as null.

    Parsers already replace such values by None (:mod:`collectbus.values`);
    a record built another way still gives valid JSON, never an error.
    """
    plain = to_plain(record)
    try:
        return json.dumps(plain, separators=(",", ":"), allow_nan=False)
    except ValueError:
        return json.dumps(finite_json(plain), separators=(",", ":"), allow_nan=False)


def finite_json(value: Any) -> Any:
    """``value`` (plain JSON data) with every NaN or infinite float, at any depth, as None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list | tuple):
        return [finite_json(v) for v in value]
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    return value


def loads_json(text: str | bytes, *, source: str = "json") -> Record:
    """Parse one JSON record."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ParseError(source, err.lineno, f"invalid JSON: {err.msg}") from err
    if not isinstance(data, dict):
        raise ParseError(source, None, "a record must be a JSON object")
    return from_plain(data, source=source)


def dumps_msgpack(record: Record) -> bytes:
    """One record as MessagePack."""
    return cast(bytes, msgpack.packb(to_plain(record), use_bin_type=True))


def loads_msgpack(data: bytes, *, source: str = "msgpack") -> Record:
    """Parse one MessagePack record."""
    try:
        plain = msgpack.unpackb(data, raw=False)
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as err:
        raise ParseError(source, None, f"invalid MessagePack: {err}") from err
    if not isinstance(plain, dict):
        raise ParseError(source, None, "a record must be a map")
    return from_plain(plain, source=source)
