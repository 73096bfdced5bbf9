"""Incremental job parsing gives exactly the records of a full parse."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from tests.fakes.pbs.scenario import pbs_dumps

from collectbus.collectors.pbs.incremental import IncrementalJobs, _renew
from collectbus.collectors.pbs.parse import parse_qstat_jobs
from collectbus.records import JobRecord

DATA = Path(__file__).resolve().parents[3] / "data" / "pbs"
ZONE = ZoneInfo("America/Chicago")
JOB_FILES = sorted(DATA.glob("qstat_fx_json__*.json"))


@pytest.mark.parametrize("path", JOB_FILES, ids=lambda p: p.name)
def test_recorded_listings_split_per_job_and_match_a_full_parse(path: Path) -> None:
    payload = path.read_bytes()
    full = parse_qstat_jobs(payload, cluster="c", zone=ZONE, observed_ns=1)
    jobs = IncrementalJobs(cluster="c", zone=ZONE)
    first = jobs.parse(payload, 1)
    assert not jobs.full  # PBS's own layout: the per-job path was taken
    assert (jobs.parsed, jobs.reused) == (len(full.records), 0)
    assert first.records == full.records
    assert first.server == full.server
    again = jobs.parse(payload, 2)
    assert (jobs.parsed, jobs.reused) == (0, len(full.records))
    assert [r.observed_ns for r in again.records] == [2] * len(full.records)
    assert [r.raw_json for r in again.records] == [r.raw_json for r in full.records]


def test_only_changed_jobs_are_parsed_again() -> None:
    doc = json.loads((DATA / "qstat_fx_json__alcf_aurora_pbs_monitor_567e020.json").read_bytes())
    jobs = IncrementalJobs(cluster="c", zone=ZONE)
    jobs.parse(pbs_dumps(doc), 1)
    first_id = next(iter(doc["Jobs"]))
    doc["Jobs"][first_id]["job_state"] = "Q"
    doc["Jobs"][first_id]["substate"] = 10
    changed = jobs.parse(pbs_dumps(doc), 2)
    assert (jobs.parsed, jobs.reused) == (1, 7)
    assert changed.records[0].state == "queued"
    assert (
        changed.records
        == parse_qstat_jobs(pbs_dumps(doc), cluster="c", zone=ZONE, observed_ns=2).records
    )


def test_quirks_and_other_layouts_take_the_full_parse() -> None:
    jobs = IncrementalJobs(cluster="c", zone=ZONE)
    for name in ("leading_zero_number_issue1255.json", "invalid_escape_issue2049.json"):
        parsed = jobs.parse((DATA / "quirks" / name).read_bytes(), 1)
        assert jobs.full
        assert parsed.repairs
        assert len(parsed.records) == 1
    compact = json.dumps(json.loads((JOB_FILES[0]).read_bytes())).encode()
    parsed = jobs.parse(compact, 1)
    assert jobs.full
    assert len(parsed.records) == 8


def test_a_duplicated_key_inside_a_job_is_not_lost_on_the_fast_path() -> None:
    payload = (
        b'{\n    "pbs_server":"s",\n    "Jobs":{\n        "1.s":{\n'
        b'            "job_state":"Q",\n            "job_state":"R"\n        }\n    }\n}\n'
    )
    jobs = IncrementalJobs(cluster="c", zone=ZONE)
    parsed = jobs.parse(payload, 1)
    assert jobs.full
    assert parsed.repairs.duplicate_keys == ["job_state"]
    assert parsed.records[0].native_state == "R"  # the last value, as PBS meant it


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
