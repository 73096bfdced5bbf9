"""Incremental job parsing gives exactly the records of a full parse."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.fakes.pbs.scenario import pbs_dumps

from collectbus.collectors.pbs.incremental import IncrementalJobs, _renew
from collectbus.collectors.pbs.jsonfix import JsonRepairError
from collectbus.collectors.pbs.parse import MAX_PROBLEMS, Parsed, parse_qstat_jobs
from collectbus.records import JobRecord

DATA = Path(__file__).resolve().parents[3] / "data" / "pbs"
ZONE = ZoneInfo("America/Chicago")
JOB_FILES = sorted(DATA.glob("qstat_fx_json__*.json"))


def _crlf(doc: object) -> bytes:
    # No JSON string holds a raw newline: every one is the layout's.
    return json.dumps(doc, indent=1, ensure_ascii=False).replace("\n", "\r\n").encode()


#: The layouts a listing may come in: PBS's own, and as other writers lay it out.
LAYOUTS: dict[str, Callable[[Any], bytes]] = {
    "pbs": pbs_dumps,
    "json.dump": lambda doc: json.dumps(doc).encode(),
    "compact": lambda doc: json.dumps(doc, separators=(",", ":")).encode(),
    "indent=2": lambda doc: (json.dumps(doc, indent=2) + "\n").encode(),
    "tabs, sorted keys": lambda doc: json.dumps(doc, indent="\t", sort_keys=True).encode(),
    "crlf, not ascii": _crlf,
}


def _same_as_full(jobs: IncrementalJobs, payload: bytes, observed_ns: int) -> Parsed[JobRecord]:
    """Parse ``payload`` with ``jobs``; check it gave exactly what a full parse gives."""
    got = jobs.parse(payload, observed_ns)
    want = parse_qstat_jobs(payload, cluster="c", zone=ZONE, observed_ns=observed_ns)
    assert got == want  # records, problems, repairs, out of range, server, completeness
    return got


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("path", JOB_FILES, ids=lambda p: p.name)
def test_recorded_listings_in_any_layout_match_a_full_parse(path: Path, layout: str) -> None:
    payload = path.read_bytes()
    if layout != "pbs":  # PBS's own layout is the recorded file itself
        payload = LAYOUTS[layout](json.loads(payload))
    jobs = IncrementalJobs(cluster="c", zone=ZONE)
    first = _same_as_full(jobs, payload, 1)
    assert not jobs.full  # the job by job path was taken
    assert (jobs.parsed, jobs.reused) == (len(first.records), 0)
    again = _same_as_full(jobs, payload, 2)
    assert jobs.same
    assert (jobs.parsed, jobs.reused) == (0, len(first.records))
    assert [r.observed_ns for r in again.records] == [2] * len(first.records)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_only_changed_jobs_are_parsed_again(layout: str) -> None:
    dumps = LAYOUTS[layout]
    doc = json.loads((DATA / "qstat_fx_json__alcf_aurora_pbs_monitor_567e020.json").read_bytes())
    jobs = IncrementalJobs(cluster="c", zone=ZONE)
    jobs.parse(dumps(doc), 1)
    first_id = next(iter(doc["Jobs"]))
    doc["Jobs"][first_id]["job_state"] = "Q"
    doc["Jobs"][first_id]["substate"] = 10
    changed = _same_as_full(jobs, dumps(doc), 2)
    assert (jobs.parsed, jobs.reused) == (1, 7)
    assert not jobs.same
    assert changed.records[0].state == "queued"


def test_a_listing_in_another_layout_is_read_again_whole_and_then_reused() -> None:
    doc = _head()
    jobs = IncrementalJobs(cluster="c", zone=ZONE)
    jobs.parse(pbs_dumps(doc), 1)
    _same_as_full(jobs, LAYOUTS["json.dump"](doc), 2)
    assert (jobs.parsed, jobs.reused) == (len(doc["Jobs"]), 0)
    _same_as_full(jobs, LAYOUTS["json.dump"](doc), 3)
    assert jobs.same


def test_quirks_take_the_full_parse() -> None:
    jobs = IncrementalJobs(cluster="c", zone=ZONE)
    for name in (
        "leading_zero_number_issue1255.json",
        "invalid_escape_issue2049.json",
        "control_char_x1c.json",
        "inf_unquoted_strtod.json",
    ):
        parsed = _same_as_full(jobs, (DATA / "quirks" / name).read_bytes(), 1)
        assert jobs.full
        assert parsed.repairs
        assert len(parsed.records) == 1


DUPLICATED_JOB_KEY = (
    b'{\n    "pbs_server":"s",\n    "Jobs":{\n        "1.s":{\n'
    b'            "job_state":"Q",\n            "job_state":"R"\n        }\n    }\n}\n'
)


@pytest.mark.parametrize(
    "payload",
    [
        DUPLICATED_JOB_KEY,
        b'{"pbs_server": "s", "Jobs": {"1.s": {"job_state": "Q", "job_state": "R"}}}',
        b'{"Jobs":{"1.s":{"Resource_List":{"ncpus":1,"ncpus":2},"job_state":"R"}},"pbs_server":"s"}',
    ],
)
def test_a_duplicated_key_inside_a_job_is_kept_and_named_on_the_fast_path(payload: bytes) -> None:
    jobs = IncrementalJobs(cluster="c", zone=ZONE)
    for observed_ns in (1, 2):  # read, then reused: named again
        parsed = _same_as_full(jobs, payload, observed_ns)
        assert not jobs.full
        assert len(parsed.repairs.duplicate_keys) == 1
        assert parsed.records[0].native_state == "R"  # the last value, as PBS meant it
    assert jobs.same
    assert jobs._last is not None
    jobs._last = None  # another listing, its jobs compared one by one: each reused
    parsed = _same_as_full(jobs, payload.replace(b'"pbs_server"', b'"timestamp":5,"pbs_server"'), 3)
    assert (jobs.parsed, jobs.reused) == (0, 1)
    assert len(parsed.repairs.duplicate_keys) == 1


@pytest.mark.parametrize(
    "payload",
    [
        # A job listed twice; the same id spelled two ways.
        b'{"pbs_server":"s","Jobs":{"1.s":{"job_state":"Q"},"1.s":{"job_state":"R"}}}',
        b'{"pbs_server":"s","Jobs":{"1.s":{"job_state":"Q"},"\\u0031.s":{"job_state":"R"}}}',
        # A header key given twice, or given before and after the jobs.
        b'{"pbs_server":"s","pbs_server":"t","Jobs":{"1.s":{"job_state":"Q"}}}',
        b'{"pbs_server":"s","Jobs":{"1.s":{"job_state":"Q"}},"pbs_server":"t"}',
        # Jobs given twice.
        b'{"Jobs":{},"pbs_server":"s","Jobs":{"1.s":{"job_state":"Q"}}}',
        # A job that is not an object.
        b'{"pbs_server":"s","Jobs":{"1.s":{"job_state":"Q"},"2.s":7}}',
    ],
)
def test_what_only_the_full_parse_can_tell_takes_it(payload: bytes) -> None:
    jobs = IncrementalJobs(cluster="c", zone=ZONE)
    parsed = _same_as_full(jobs, payload, 1)
    assert jobs.full
    assert parsed.repairs.duplicate_keys or not parsed.complete


@pytest.mark.parametrize(
    "payload",
    [
        b'{"pbs_server":"s","Jobs":{"1.s":{"job_state":"Q"},}}',  # a trailing comma
        b'{"pbs_server":"s" "Jobs":{"1.s":{"job_state":"Q"}}}',  # a missing one
        b'{,"Jobs":{"1.s":{"job_state":"Q"}}}',
        b'{"Jobs":{"1.s":{"job_state":"Q"}},}',
        b'{"Jobs":{"1.s":{"job_state":"Q"}}} x',
        b'{"x":{"Jobs":{"1.s":{"job_state":"Q"}}}}',  # not the top level's
        b'{"x":"\\"Jobs\\":{","Jobs":{"1.s":{"job_state":"Q"}}}',
        b'\xef\xbb\xbf{"Jobs":{"1.s":{"job_state":"Q"}}}',  # a BOM
        b'{"Jobs":{"1.s":{"job_state":"Q","Job_Name":"\xe9t\xe9"}}}',  # latin-1
        '{"Jobs":{"1.s":{"job_state":"Q"}}}'.encode("utf-16"),
    ],
    ids=repr,
)
def test_a_payload_that_is_not_one_json_object_is_read_as_the_full_parse_reads_it(
    payload: bytes,
) -> None:
    jobs = IncrementalJobs(cluster="c", zone=ZONE)
    try:
        want = parse_qstat_jobs(payload, cluster="c", zone=ZONE, observed_ns=1)
    except JsonRepairError as err:
        with pytest.raises(JsonRepairError, match=re.escape(str(err))):
            jobs.parse(payload, 1)
    else:
        assert jobs.parse(payload, 1) == want
    # Its jobs, as a listing that is one JSON object, after it:
    good = b'{"pbs_server":"s","Jobs":{"1.s":{"job_state":"Q"}}}'
    assert _same_as_full(jobs, good, 2).records[0].native_state == "Q"


def test_without_renewal_unchanged_jobs_are_the_same_objects() -> None:
    doc = json.loads((DATA / "qstat_fx_json__alcf_aurora_pbs_monitor_head.json").read_bytes())
    jobs = IncrementalJobs(cluster="c", zone=ZONE, renew=False)
    first = jobs.parse(pbs_dumps(doc), 1).records
    held_id = next(k for k, v in doc["Jobs"].items() if v["job_state"] == "H")
    doc["Jobs"][held_id]["job_state"] = "Q"
    second = jobs.parse(pbs_dumps(doc), 2).records
    same = [a is b for a, b in zip(first, second, strict=True)]
    assert same == [r.job_id != held_id for r in second]
    assert {r.observed_ns for r in second} == {1, 2}


def test_an_unreadable_value_is_reported_again_while_it_stays() -> None:
    doc = json.loads((DATA / "qstat_fx_json__metacentrum_running_job.json").read_bytes())
    job = next(iter(doc["Jobs"].values()))
    job["stime"] = "not a time"
    jobs = IncrementalJobs(cluster="c", zone=ZONE)
    for observed in (1, 2):
        parsed = jobs.parse(pbs_dumps(doc), observed)
        assert parsed.problem_count == 1
        assert "stime: 'not a time' is not a PBS time" in parsed.problems[0]
        assert parsed.records[0].start_ns is None
    assert jobs.reused == 1


def test_renewing_a_record_changes_only_its_observation_time() -> None:
    values = {f.name: f"v{i}" for i, f in enumerate(dataclasses.fields(JobRecord))}
    record = JobRecord(**values)  # type: ignore[arg-type]
    renewed = _renew(record, 99)
    assert renewed == dataclasses.replace(record, observed_ns=99)
    assert renewed is not record
    with pytest.raises(dataclasses.FrozenInstanceError):
        renewed.state = "x"  # type: ignore[misc]


def _head() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(
        (DATA / "qstat_fx_json__alcf_aurora_pbs_monitor_head.json").read_bytes()
    )
    return doc


@pytest.mark.parametrize("renew", [True, False])
def test_a_listing_with_the_same_jobs_gives_the_records_a_job_by_job_pass_gives(
    renew: bool,
) -> None:
    doc = _head()
    jobs = IncrementalJobs(cluster="c", zone=ZONE, renew=renew)
    first = jobs.parse(pbs_dumps(doc), 1).records
    doc["timestamp"] += 60  # the header moves every time; the jobs do not
    again = jobs.parse(pbs_dumps(doc), 2)
    assert jobs.same
    assert (jobs.parsed, jobs.reused) == (0, len(first))
    slow = IncrementalJobs(cluster="c", zone=ZONE, renew=renew)
    slow.parse(pbs_dumps(_head()), 1)
    assert slow._last is not None
    slow._last = None  # the job by job pass, over the same cache
    expected = slow.parse(pbs_dumps(doc), 2)
    assert not slow.same
    assert (slow.parsed, slow.reused) == (0, len(first))
    assert again.records == expected.records
    assert again.server == expected.server
    if renew:
        assert {r.observed_ns for r in again.records} == {2}
    else:
        assert all(a is b for a, b in zip(first, again.records, strict=True))
    full = parse_qstat_jobs(pbs_dumps(doc), cluster="c", zone=ZONE, observed_ns=2)
    assert [r.raw_json for r in again.records] == [r.raw_json for r in full.records]


@pytest.mark.parametrize("new_state", ["Q", "QUEUED"])
def test_one_changed_job_in_an_otherwise_identical_listing_is_parsed_again(
    new_state: str,
) -> None:
    doc = _head()
    jobs = IncrementalJobs(cluster="c", zone=ZONE, renew=False)
    jobs.parse(pbs_dumps(doc), 1)
    last_id = list(doc["Jobs"])[-1]
    assert doc["Jobs"][last_id]["job_state"] != new_state
    doc["Jobs"][last_id]["job_state"] = new_state  # same length, or not
    changed = jobs.parse(pbs_dumps(doc), 2)
    assert not jobs.same
    assert (jobs.parsed, jobs.reused) == (1, len(doc["Jobs"]) - 1)
    full = parse_qstat_jobs(pbs_dumps(doc), cluster="c", zone=ZONE, observed_ns=2)
    assert changed.records[-1] == full.records[-1]
    assert changed.records[-1].native_state == new_state
    # The next identical listing is compared with this one, not the first.
    again = jobs.parse(pbs_dumps(doc), 3)
    assert jobs.same
    assert again.records == changed.records


def test_an_unreadable_value_is_reported_again_when_the_whole_listing_is_the_same() -> None:
    doc = json.loads((DATA / "qstat_fx_json__metacentrum_running_job.json").read_bytes())
    next(iter(doc["Jobs"].values()))["stime"] = "not a time"
    jobs = IncrementalJobs(cluster="c", zone=ZONE)
    jobs.parse(pbs_dumps(doc), 1)
    again = jobs.parse(pbs_dumps(doc), 2)
    assert jobs.same
    assert again.problem_count == 1
    assert "stime: 'not a time' is not a PBS time" in again.problems[0]


# ------------------------------------------------------- random listings


class _Twice(dict[str, Any]):
    """A job whose text names ``key`` twice (as PBS's own output sometimes does)."""

    def __init__(self, attrs: dict[str, Any], key: str, value: str) -> None:
        super().__init__(attrs)
        self.key, self.value = key, value

    def items(self) -> Any:  # what json.dumps writes, in its C and Python encoders
        return [*super().items(), (self.key, self.value)]


def _recorded_jobs() -> dict[str, dict[str, Any]]:
    jobs: dict[str, dict[str, Any]] = {}
    for path in JOB_FILES:
        jobs.update(json.loads(path.read_bytes())["Jobs"])
    return jobs


RECORDED = _recorded_jobs()
KEYS = [
    "job_state",
    "substate",
    "Exit_status",
    "ctime",
    "stime",
    "obittime",
    "Job_Owner",
    "exec_host",
    "comment",
    "Priority",
    "eligible_time",
    "Job_Name",
    "array_id",
]
NESTED = [
    ("Resource_List", "ncpus"),
    ("Resource_List", "mem"),
    ("Resource_List", "walltime"),
    ("resources_used", "walltime"),
    ("resources_used", "cput"),
]
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(),
    st.text(max_size=10),
    st.sampled_from(["R", "F", "Q", "92", "-29", "01:02:03", "Wed Jul 23 15:35:36 2025", "4gb"]),
    st.lists(st.integers(), max_size=2),
)
EDITS = st.one_of(
    st.tuples(st.just("set"), st.integers(0, 99), st.sampled_from(KEYS), VALUES),
    st.tuples(st.just("nested"), st.integers(0, 99), st.sampled_from(NESTED), VALUES),
    st.tuples(st.just("remove"), st.integers(0, 99)),
    st.tuples(st.just("add"), st.integers(0, 99), st.text(min_size=1, max_size=12)),
    st.tuples(st.just("twice"), st.integers(0, 99), st.sampled_from(KEYS), st.text(max_size=5)),
)
LISTINGS = st.lists(
    st.tuples(st.lists(EDITS, max_size=5), st.sampled_from(sorted(LAYOUTS))),
    min_size=1,
    max_size=5,
)


def _edit(jobs: dict[str, Any], edit: tuple[Any, ...]) -> None:
    """Apply one edit to ``jobs`` (job id to attributes), copying what it changes."""
    kind, index = edit[0], edit[1]
    ids = list(jobs)
    if kind == "add":
        template = list(RECORDED.values())[index % len(RECORDED)]
        jobs[edit[2]] = dict(template)
        return
    if not ids:
        return
    job_id = ids[index % len(ids)]
    attrs = dict(jobs[job_id])  # a _Twice becomes a plain job again when edited
    if kind == "remove":
        del jobs[job_id]
    elif kind == "set":
        attrs[edit[2]] = edit[3]
        jobs[job_id] = attrs
    elif kind == "nested":
        (outer, inner), value = edit[2], edit[3]
        nested = attrs.get(outer)
        attrs[outer] = {**(nested if isinstance(nested, dict) else {}), inner: value}
        jobs[job_id] = attrs
    else:
        key = edit[2]
        attrs[key] = str(attrs.get(key))  # both values are text: a sorted layout compares them
        jobs[job_id] = _Twice(attrs, key, edit[3])


@settings(max_examples=80, deadline=None)
@given(listings=LISTINGS)
def test_random_edits_of_a_recorded_listing_in_any_layout_match_a_full_parse(
    listings: list[tuple[list[tuple[Any, ...]], str]],
) -> None:
    head = _head()
    jobs: dict[str, Any] = dict(RECORDED)
    parser = IncrementalJobs(cluster="c", zone=ZONE)
    for observed_ns, (edits, layout) in enumerate(listings, 1):
        for edit in edits:
            _edit(jobs, edit)
        head["timestamp"] += 60
        payload = LAYOUTS[layout]({**head, "Jobs": jobs})
        _same_as_full(parser, payload, observed_ns)
        assert not parser.full
        assert parser.parsed + parser.reused == len(jobs)


def test_every_problem_of_a_job_counts_when_it_is_reused() -> None:
    # Objects where values belong: one problem per field, more than a listing keeps.
    bad = {key: {} for key in [*KEYS, "etime", "queue", "Account_Name", "exec_vnode"]}
    bad["Resource_List"] = {k: {} for k in ("ncpus", "ngpus", "nodect", "mem", "walltime")}
    bad["resources_used"] = {k: {} for k in ("walltime", "cput", "mem")}
    doc = {"pbs_server": "s", "Jobs": {"1.s": bad, "2.s": bad, "3.s": {"job_state": "Q"}}}
    jobs = IncrementalJobs(cluster="c", zone=ZONE)
    first = _same_as_full(jobs, pbs_dumps(doc), 1)
    assert first.problem_count > 2 * MAX_PROBLEMS > len(first.problems)
    doc["Jobs"]["3.s"] = {"job_state": "R"}
    _same_as_full(jobs, pbs_dumps(doc), 2)
    assert (jobs.parsed, jobs.reused) == (1, 2)
