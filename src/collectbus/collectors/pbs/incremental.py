"""Parsing a ``qstat -f -F json`` listing again, cheaply: only the jobs that changed.

A cluster's listing holds thousands of jobs, and from one minute to the next
most of them are byte for byte the same (only ``resources_used`` of running
jobs moves). :class:`IncrementalJobs` reads the ``Jobs`` object member by
member, in any JSON layout (PBS's ``"key":value`` at 4 spaces a level,
``json.dump``'s one line with ``", "`` and ``": "``, any indentation)::

    {"timestamp":1664911414, ..., "Jobs":{"12860476.server":{...}, "12860477.server":{...}}}

For each job it looks at the text from the job id's first character to the
end of its value (the job's *member*): when the listing before had a job with
that id whose member is, character for character, the text found here, that
member is known to end there (a JSON value is self-delimiting) and the record
it gave then is given again (with this collection's ``observed_ns``). Only a
new or changed job is read, with the C scanner of :mod:`json` at its position,
which says where its value ends. Between members only JSON's own grammar is
allowed (whitespace, ``,``, ``:``), checked with anchored regular expressions,
so no layout is assumed and nothing is skipped unread.

Before that, the whole ``Jobs`` object is compared at once, in the payload's
bytes, with the last listing's: when no job changed, its records are given
again without a loop over the jobs (the same objects without ``renew``). The
price is holding the last listing's payload between collections, on top of
one member per job.

What lies around the ``Jobs`` object (the header, and whatever follows it, as
with ``sort_keys``) is small and parsed each time: it must make, with the
``Jobs`` object, one JSON object (a member list ending in ``,`` before it, a
``}`` or a non-empty member list after it), whose ``pbs_server`` is the
listing's server.

Exactness: the records, problems, out-of-range notes, refusals, ``raw_json``
(always :func:`~collectbus.collectors.pbs.parse.JobParser.job`'s own, as the
full parse writes it) and duplicated keys are those of
:func:`~collectbus.collectors.pbs.parse.parse_qstat_jobs`:

* Duplicate keys. Every job read is scanned with :func:`.jsonfix.pairs_hook`,
  as the full parse reads the payload, so a key given twice inside a job is
  kept as a list and named in ``repairs.duplicate_keys``, in document order
  (the names are kept with the job and named again each time it is reused:
  its text is the same, so are its duplicates). A job id listed twice (even
  spelled differently, ``"1.s"`` and ``"\\u0031.s"``), a key given twice in
  the header and trailer together, or ``Jobs`` itself given twice, take the
  full parse.
* Anything the strict parse refuses (a quirk that needs repair, bytes that
  are not UTF-8, a payload not in UTF-8), a job that is not a JSON object, a
  layout around ``Jobs`` that does not parse as said above: the whole payload
  goes through :func:`~collectbus.collectors.pbs.parse.parse_qstat_jobs`
  instead.
* A job the full parse refuses (no record, one problem naming it) is refused
  here the same way, and the listing is incomplete.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from datetime import tzinfo

from collectbus.collectors.pbs.jsonfix import JsonValue, pairs_hook
from collectbus.collectors.pbs.parse import JobParser, Parsed, _refusing, parse_qstat_jobs
from collectbus.records import JobRecord

__all__ = ["IncrementalJobs"]

_WS = " \t\n\r"
#: The ``Jobs`` key of the top-level object, and the ``{`` its value opens with.
_SECTION = re.compile(rb'"Jobs"[ \t\n\r]*:[ \t\n\r]*\{')
#: After ``{`` of ``Jobs``: the first job id's quote, or the end of an empty object.
_FIRST = re.compile(r'[ \t\n\r]*(?:(")|\})')
#: After a job's value: the next job id's quote, or the end of the ``Jobs`` object.
_NEXT = re.compile(r'[ \t\n\r]*(?:(,)[ \t\n\r]*"|\})')
_COLON = re.compile(r"[ \t\n\r]*:[ \t\n\r]*")


@dataclasses.dataclass(slots=True, frozen=True)
class _Seen:
    """One job as read in the last listing."""

    #: Its member's text: from the id's first character to the end of its value.
    member: str
    job_id: str
    #: None when the job was refused.
    record: JobRecord | None
    problems: tuple[str, ...]
    out_of_range: tuple[str, ...]
    duplicates: tuple[str, ...]


@dataclasses.dataclass(slots=True, frozen=True)
class _Listing:
    """The last listing: its payload, where its ``Jobs`` object lies in it, and what it gave."""

    payload: bytes
    start: int
    end: int
    records: tuple[JobRecord, ...]
    problems: tuple[str, ...]
    out_of_range: tuple[str, ...]
    duplicates: tuple[str, ...]
    complete: bool


class _Job(Parsed[JobRecord]):
    """What reading one job gave: every problem kept (the listing's total truncates)."""

    __slots__ = ()

    def problem(self, text: str) -> None:
        self.problem_count += 1
        self.problems.append(text)


class IncrementalJobs:
    """Parses successive job listings of one server, reusing unchanged jobs.

    ``parsed`` and ``reused`` count the jobs of the last listing that were
    parsed and reused; ``full`` is True when it took the full parse, ``same``
    when its jobs were byte for byte those of the listing before.

    With ``renew`` (the default) every record carries this collection's
    ``observed_ns``. Without it, an unchanged job's record is the very object
    given for it last time (its ``observed_ns`` is when the job was first seen
    as it is now): a consumer tells unchanged jobs by identity, at no cost,
    and the listing's time is the collection's.
    """

    def __init__(self, *, cluster: str, zone: tzinfo | None, renew: bool = True) -> None:
        self.cluster = cluster
        self.zone = zone
        self.renew = renew
        self._jobs = JobParser(cluster=cluster, zone=zone)
        self._cache: dict[str, _Seen] = {}
        self._last: _Listing | None = None
        # The scanner of one JSON value, keeping duplicated keys as the full parse does.
        self._duplicates: list[str] = []
        decoder = json.JSONDecoder(object_pairs_hook=pairs_hook(self._duplicates))
        self._scan = decoder.raw_decode
        self.parsed = 0
        self.reused = 0
        self.full = False
        self.same = False

    def parse(self, payload: bytes, observed_ns: int) -> Parsed[JobRecord]:
        """The jobs of ``payload``, as :func:`parse_qstat_jobs` would give them."""
        self.same = False
        out = self._parse_members(payload, observed_ns)
        if out is not None:
            self.full = False
            return out
        self._cache = {}
        self._last = None
        self.full = True
        out = parse_qstat_jobs(
            payload, cluster=self.cluster, zone=self.zone, observed_ns=observed_ns
        )
        self.parsed, self.reused = len(out.records), 0
        return out

    def _parse_members(self, payload: bytes, observed_ns: int) -> Parsed[JobRecord] | None:
        if json.detect_encoding(payload) != "utf-8":
            return None  # a BOM, UTF-16 or -32: as the full parse reads it
        found = _SECTION.search(payload)
        if found is None:
            return None
        start = found.end() - 1  # the ``{`` of the Jobs object
        last = self._last
        if last is not None and payload.startswith(
            memoryview(last.payload)[last.start : last.end], start
        ):
            end = start + last.end - last.start
            try:
                head = payload[: found.start()].decode("utf-8", "surrogatepass")
                tail = payload[end:].decode("utf-8", "surrogatepass")
            except UnicodeDecodeError:
                return None
            server = _outside(head, tail)
            if server is None:
                return None
            self._last = dataclasses.replace(last, payload=payload, start=start, end=end)
            return self._again(last, observed_ns, server[0])
        try:
            text = payload.decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            return None
        if len(text) == len(payload):  # ASCII: a byte's offset is its character's
            key_at = found.start()
        else:
            key_at = len(payload[: found.start()].decode("utf-8", "surrogatepass"))
        at = key_at + start - found.start()
        return self._read(text, key_at, at, payload, start, observed_ns)

    def _read(
        self, text: str, key_at: int, at: int, payload: bytes, start: int, observed_ns: int
    ) -> Parsed[JobRecord] | None:
        """Read the ``Jobs`` object whose key is at ``key_at`` and ``{`` at ``at`` in ``text``.

        ``start`` is where that ``{`` is in ``payload``, the bytes of ``text``.
        """
        out: Parsed[JobRecord] = Parsed()
        records = out.records
        problems: list[str] = []
        out_of_range = out.out_of_range
        duplicates = out.repairs.duplicate_keys
        new: dict[str, _Seen] = {}
        ids: list[str] = []
        get, find, startswith, match = self._cache.get, text.find, text.startswith, _NEXT.match
        renew = self.renew
        complete = True
        parsed = 0
        step = _FIRST.match(text, at + 1)
        if step is None:
            return None
        pos = step.end()
        more = step.group(1) is not None
        while more:
            # ``pos`` is the first character of a job id, after its opening quote.
            quote = find('"', pos)
            if quote < 0:
                return None
            key = text[pos:quote]
            seen = get(key)
            if seen is None or not startswith(seen.member, pos):
                seen = self._read_one(text, pos, quote, observed_ns)
                if seen is None:
                    return None
                parsed += 1
                record = seen.record
            else:
                record = seen.record
                if renew and record is not None:
                    record = _renew(record, observed_ns)
            new[key] = seen
            ids.append(seen.job_id)
            if record is None:
                complete = False  # refused
            else:
                records.append(record)
            if seen.problems:
                for problem in seen.problems:
                    out.problem(problem)
                problems += seen.problems
            if seen.out_of_range:
                out_of_range += seen.out_of_range
            if seen.duplicates:
                duplicates += seen.duplicates
            step = match(text, pos + len(seen.member))
            if step is None:
                return None
            pos = step.end()
            more = step.group(1) is not None
        if len(new) != len(ids) or len(set(ids)) != len(ids):
            return None  # a job id listed twice: the full parse shows it
        tail = text[pos:]
        server = _outside(text[:key_at], tail)
        if server is None:
            return None
        out.server = server[0]
        out.complete = complete
        end = len(payload) - len(tail.encode("utf-8", "surrogatepass"))
        self._cache = new
        self._last = _Listing(
            payload,
            start,
            end,
            tuple(records),
            tuple(problems),
            tuple(out_of_range),
            tuple(duplicates),
            complete,
        )
        self.parsed, self.reused = parsed, len(ids) - parsed
        return out

    def _read_one(self, text: str, pos: int, quote: int, observed_ns: int) -> _Seen | None:
        """Read the job whose id starts at ``pos``; None when the full parse must tell."""
        duplicates = self._duplicates
        duplicates.clear()
        try:
            if "\\" in text[pos:quote]:  # an escape: read the id as JSON
                job_id, quote = self._scan(text, pos - 1)
                quote -= 1
            else:
                job_id = text[pos:quote]
            colon = _COLON.match(text, quote + 1)
            if colon is None:
                return None
            attrs, end = self._scan(text, colon.end())
        except (ValueError, RecursionError):
            return None  # a quirk, or not JSON: the full parse repairs or refuses it
        if not isinstance(attrs, dict):
            return None  # the full parse names it first among its problems
        own = _Job()
        record = None
        with _refusing(own, self.cluster, job_id):
            record = self._jobs.job(job_id, attrs, observed_ns, own)
        return _Seen(
            text[pos:end],
            job_id,
            record,
            tuple(own.problems),
            tuple(own.out_of_range),
            tuple(duplicates),
        )

    def _again(self, last: _Listing, observed_ns: int, server: str | None) -> Parsed[JobRecord]:
        """The records of a listing whose jobs are byte for byte the last one's."""
        out: Parsed[JobRecord] = Parsed(server=server, complete=last.complete)
        if self.renew:
            out.records = [_renew(record, observed_ns) for record in last.records]
        else:
            out.records = list(last.records)
        for problem in last.problems:
            out.problem(problem)
        out.out_of_range += last.out_of_range
        out.repairs.duplicate_keys += last.duplicates
        self.parsed, self.reused = 0, len(self._cache)
        self.same = True
        return out


def _outside(head: str, tail: str) -> tuple[str | None] | None:
    """The server named around the ``Jobs`` object; None when the full parse must read it.

    ``head`` runs from the payload's start to the ``"Jobs"`` key, ``tail`` from
    the end of its value to the payload's end: together they must make one
    object with the ``Jobs`` member, with no key given twice.
    """
    before = head.rstrip(_WS)
    members: dict[str, JsonValue] = {}
    found: list[str] = []
    hook = pairs_hook(found)
    try:
        if before.endswith(","):
            doc = json.loads(before[:-1] + "}", object_pairs_hook=hook)
            if not isinstance(doc, dict) or not doc:
                return None
            members.update(doc)
        elif before.lstrip(_WS) != "{":
            return None
        after = tail.lstrip(_WS)
        if after.startswith(","):
            doc = json.loads("{" + after[1:], object_pairs_hook=hook)
            if not isinstance(doc, dict) or not doc or not members.keys().isdisjoint(doc):
                return None
            members.update(doc)
        elif not after.startswith("}") or after[1:].strip(_WS):
            return None
    except (ValueError, RecursionError):
        return None
    if found or "Jobs" in members:
        return None
    server = members.get("pbs_server")
    return (server if isinstance(server, str) else None,)


def _make_renew() -> Callable[[JobRecord, int], JobRecord]:
    """Build ``_renew``: one line per field, each written through its slot's descriptor.

    The same as ``dataclasses.replace(record, observed_ns=...)``, about three
    times faster than a loop of ``object.__setattr__`` and six times faster
    than ``replace``: the values come from a record already built, so
    ``__init__`` and its checks are skipped. Generated from the dataclass's
    fields (as :mod:`dataclasses` builds ``__init__``), so it follows them.
    """
    names = [f.name for f in dataclasses.fields(JobRecord)]
    scope: dict[str, object] = {f"set_{n}": getattr(JobRecord, n).__set__ for n in names}
    scope["new"], scope["JobRecord"] = object.__new__, JobRecord
    body = "".join(
        f"    set_{n}(out, observed_ns)\n"
        if n == "observed_ns"
        else f"    set_{n}(out, record.{n})\n"
        for n in names
    )
    source = f"def renew(record, observed_ns):\n    out = new(JobRecord)\n{body}    return out\n"
    exec(source, scope)  # our own text, built from the dataclass's field names
    renew = scope["renew"]
    assert callable(renew)
    return renew


#: ``record`` as seen again at ``observed_ns``.
_renew = _make_renew()
