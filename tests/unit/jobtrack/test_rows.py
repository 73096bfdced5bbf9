"""Scheduler rows: storable text and scrubbed payloads, on real payloads."""

from __future__ import annotations

import json
from datetime import UTC
from pathlib import Path

import pytest

from collectbus.collectors.pbs.reservations import parse_pbs_rstat
from collectbus.collectors.slurm.reservations import parse_scontrol_reservations
from collectbus.jobtrack.rows import SCRUBBED, prepare_raw, scrub_value
from collectbus.store.jobrows import RAW_LIMIT, TEXT_LIMIT, clean_text

DATA = Path(__file__).parent.parent.parent / "data" / "jobs"


def test_clean_text_repairs_and_says_what() -> None:
    assert clean_text("ok", 10) == ("ok", None)
    bad = b"caf\xe9".decode("utf-8", "surrogateescape")
    assert clean_text(bad, 10) == ("caf\ufffd", "not valid UTF-8, bad bytes replaced")
    assert clean_text("a\x00b", 10) == ("ab", "NUL characters removed")
    text, problem = clean_text("y" * 5000, TEXT_LIMIT)
    assert len(text) == TEXT_LIMIT
    assert problem == "5,000 characters, truncated to 4,096"


def test_a_slurm_payload_is_scrubbed_at_every_depth() -> None:
    job = json.loads((DATA / "sacct_slurm_22.05.8.json").read_text())["jobs"][0]
    scrubbed = scrub_value(job)
    assert isinstance(scrubbed, dict)
    for key in ("user", "account", "name", "working_directory", "association", "group"):
        assert key in job
        assert scrubbed[key] == SCRUBBED
    # What is not personal stays as it was: CPU times (time.user), step and TRES names.
    assert scrubbed["steps"][0]["step"]["name"] == job["steps"][0]["step"]["name"]
    assert scrubbed["tres"] == job["tres"]
    assert scrubbed["time"] == job["time"]
    assert scrubbed["state"] == job["state"]
    assert scrubbed["exit_code"] == job["exit_code"]


def test_reservation_payloads_keep_no_name_owner_or_user() -> None:
    """The recorded ``pbs_rstat -f`` and ``scontrol show reservation`` listings,
    parsed, then scrubbed as the store scrubs them."""
    data = DATA.parent
    pbs = parse_pbs_rstat(
        (data / "pbs" / "reservations" / "pbs_rstat_f.txt").read_bytes(),
        cluster="c1",
        observed_ns=7,
        zone=UTC,
    )
    slurm = parse_scontrol_reservations(
        (data / "slurm" / "scontrol_show_reservation_o_22.05.8.txt").read_bytes(),
        cluster="c1",
        observed_ns=7,
        tz=UTC,
    )
    assert pbs
    assert slurm
    for record in (*pbs, *slurm):
        assert record.owner or record.users or record.name
        text, problem = prepare_raw(record.raw_json, scrub=True)
        assert problem is None
        personal = {record.owner, record.name, *record.users} - {None, ""}
        names = {value.lstrip("+-").split("@")[0] for value in personal}
        for name in names:
            assert name not in text, (record.resv_id, name)
        kept, _ = prepare_raw(record.raw_json, scrub=False)
        assert all(name in kept for name in names)


def test_prepare_raw() -> None:
    raw = json.dumps({"Job_Owner": "user1@login", "queue": "prod", "comment": "x"})
    assert prepare_raw(raw, scrub=False) == (raw, None)
    text, problem = prepare_raw(raw, scrub=True)
    assert problem is None
    assert json.loads(text) == {"Job_Owner": SCRUBBED, "queue": "prod", "comment": SCRUBBED}
    # Text that is not JSON cannot be scrubbed field by field: none of it is kept.
    text, problem = prepare_raw("Job_Owner = user1@login", scrub=True)
    assert problem == "not JSON, dropped"
    assert "user1" not in text


@pytest.mark.parametrize("scrub", [False, True])
def test_a_payload_over_the_limit_keeps_its_shape(scrub: bool) -> None:
    raw = json.dumps({"queue": "prod", "comment": "z" * (RAW_LIMIT + 10)})
    text, problem = prepare_raw(raw, scrub=scrub)
    assert problem is not None
    assert problem.endswith("long strings truncated")
    parsed = json.loads(text)
    assert parsed["queue"] == "prod"
    assert len(parsed["comment"]) == (len(SCRUBBED) if scrub else TEXT_LIMIT)
