"""A collector's history as JSON or JSON Lines, and back.

``json`` writes one document: the collector's counters, every handler's
statistics and the held calls. ``jsonl`` writes one call per line, each the
:mod:`collectbus.codec` form of a :class:`~collectbus.records.CallRecord`
(the form the rest of collectbus reads and writes). Both are written to a
temporary file first and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from collectbus.calls.stats import CallStats
from collectbus.codec import dumps_json, from_plain, loads_json, to_plain
from collectbus.errors import ParseError
from collectbus.records import CallRecord

ExportFormat = Literal["json", "jsonl"]
#: The version of the ``json`` document layout.
DOCUMENT_VERSION = 1


def document(
    meta: Mapping[str, object], stats: Mapping[str, CallStats], records: Iterable[CallRecord]
) -> dict[str, Any]:
    """The ``json`` export (and ``to_dict()``) as plain values."""
    return {
        "version": DOCUMENT_VERSION,
        **meta,
        "stats": {name: dataclasses.asdict(s) for name, s in stats.items()},
        "records": [to_plain(r) for r in records],
    }


def write_export(
    path: str | os.PathLike[str],
    fmt: ExportFormat,
    doc: Mapping[str, Any],
    records: Sequence[CallRecord],
) -> int:
    """Write ``doc`` (json) or ``records`` (jsonl) to ``path``; return the calls written."""
    if fmt not in ("json", "jsonl"):
        raise ValueError(f"format must be json or jsonl, got {fmt!r}")
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as out:
            if fmt == "json":
                json.dump(doc, out, allow_nan=False)
                out.write("\n")
            else:
                for record in records:
                    out.write(dumps_json(record))
                    out.write("\n")
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
    return len(records)


def read_export(path: str | os.PathLike[str]) -> list[CallRecord]:
    """The calls of a ``json`` or ``jsonl`` export."""
    source = str(path)
    text = Path(path).read_text(encoding="utf-8")
    try:
        whole = json.loads(text)
    except json.JSONDecodeError:
        whole = None  # several lines: JSON Lines
    if isinstance(whole, dict) and "records" in whole:
        plain = whole["records"]
        if not isinstance(plain, list):
            raise ParseError(source, None, "records must be a list")
        if not all(isinstance(p, dict) for p in plain):
            raise ParseError(source, None, "every record must be an object")
        records = [from_plain(p, source=source) for p in plain]
    else:
        records = [
            loads_json(line, source=f"{source}:{n}")
            for n, line in enumerate(text.splitlines(), start=1)
            if line.strip()
        ]
    calls = [r for r in records if isinstance(r, CallRecord)]
    if len(calls) != len(records):
        raise ParseError(source, None, "holds records that are not calls")
    return calls
