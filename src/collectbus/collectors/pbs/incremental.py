"""Parsing a ``qstat -f -F json`` listing again, cheaply: only the jobs that changed.

A cluster's listing holds thousands of jobs, and from one minute to the next
most of them are byte for byte the same (only ``resources_used`` of running
jobs moves). PBS pretty-prints the ``Jobs`` object with a fixed layout, every
job starting on a line of its own at 8 spaces::

    {
        "timestamp":1664911414,
        ...
        "Jobs":{
            "12860476.server":{
                "Job_Name":"swrap_01",
                ...
            },
            "12860477.server":{

so the listing splits, without parsing, into one byte slice per job at the
separator ``\\n        },\\n        "``. A slice seen in the previous
collection gives the record it gave then (with this collection's
``observed_ns``); only new slices are parsed, each with ``json.loads``.

Whenever the layout is not exactly that (another indentation, a quirk that
needs repair, a slice that does not parse), the whole payload goes through
:func:`~collectbus.collectors.pbs.parse.parse_qstat_jobs` instead, so the
records are always the same as a full parse would give.
"""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import tzinfo

from collectbus.collectors.pbs.jsonfix import pairs_hook
from collectbus.collectors.pbs.parse import JobParser, Parsed, parse_qstat_jobs
from collectbus.records import JobRecord

__all__ = ["IncrementalJobs"]

_SECTION = b'\n    "Jobs":{\n        "'
_SEPARATOR = b'\n        },\n        "'
_END = re.compile(rb"\n        }\n    }\n}\s*\Z")
_CLOSE = b"\n        }}"


class IncrementalJobs:
    """Parses successive job listings of one server, reusing unchanged jobs.

    ``parsed`` and ``reused`` count the jobs of the last listing that were
    parsed and reused; ``full`` is True when it took the full parse.
    """

    def __init__(self, *, cluster: str, zone: tzinfo | None) -> None:
        self.cluster = cluster
        self.zone = zone
        self._jobs = JobParser(cluster=cluster, zone=zone)
        self._cache: dict[bytes, JobRecord] = {}
        self.parsed = 0
        self.reused = 0
        self.full = False

    def parse(self, payload: bytes, observed_ns: int) -> Parsed[JobRecord]:
        """The jobs of ``payload``, as :func:`parse_qstat_jobs` would give them."""
        out = self._parse_slices(payload, observed_ns)
        if out is not None:
            self.full = False
            return out
        self._cache = {}
        self.full = True
        out = parse_qstat_jobs(
            payload, cluster=self.cluster, zone=self.zone, observed_ns=observed_ns
        )
        self.parsed, self.reused = len(out.records), 0
        return out

    def _parse_slices(self, payload: bytes, observed_ns: int) -> Parsed[JobRecord] | None:
        start = payload.find(_SECTION)
        end = _END.search(payload, start) if start >= 0 else None
        if end is None:
            return None
        try:
            header = json.loads(payload[:start].rstrip(b", \n") + b"}")
        except ValueError:
            return None
        out: Parsed[JobRecord] = Parsed()
        if isinstance(header, dict) and isinstance(header.get("pbs_server"), str):
            out.server = header["pbs_server"]
        old, new = self._cache, {}
        parsed = reused = 0
        replace = dataclasses.replace
        records = out.records
        for piece in payload[start + len(_SECTION) : end.start()].split(_SEPARATOR):
            record = old.get(piece)
            if record is not None:
                record = replace(record, observed_ns=observed_ns)
                reused += 1
            else:
                duplicates: list[str] = []
                try:
                    one = json.loads(
                        b'{"' + piece + _CLOSE, object_pairs_hook=pairs_hook(duplicates)
                    )
                except ValueError:
                    return None  # a quirk, or not the layout after all: parse it whole
                if duplicates or not isinstance(one, dict) or len(one) != 1:
                    return None
                ((job_id, attrs),) = one.items()
                if not isinstance(attrs, dict):
                    return None
                record = self._jobs.job(job_id, attrs, observed_ns, out)
                parsed += 1
            new[piece] = record
            records.append(record)
        if len(new) != len(records):
            return None  # two identical slices: a duplicated job id; let the full parse see it
        self._cache = new
        self.parsed, self.reused = parsed, reused
        return out
