"""``pbs_rstat -f`` read into reservation records (fixtures written from PBS's
documented format: tests/data/pbs/reservations/README.md)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from collectbus.collectors.pbs.reservations import parse_pbs_rstat, reservation_state
from collectbus.errors import ParseError

DATA = Path(__file__).resolve().parents[3] / "data" / "pbs" / "reservations"
UTC_ZONE = ZoneInfo("UTC")


def _ns(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()) * 10**9


def _parse(name: str, **kwargs: object) -> list:  # type: ignore[type-arg]
    data = (DATA / name).read_bytes()
    return parse_pbs_rstat(data, cluster="c1", observed_ns=7, zone=UTC_ZONE, **kwargs)  # type: ignore[arg-type]


def test_every_documented_field_is_read() -> None:
    records = {r.resv_id: r for r in _parse("pbs_rstat_f.txt")}
    assert list(records) == [
        "R1042.pbs01", "R1043.pbs01", "S1044.pbs01", "R1045.pbs01", "R1046.pbs01"
    ]  # fmt: skip
    r = records["R1042.pbs01"]
    assert (r.state, r.native_state, r.substate) == ("confirmed", "RESV_CONFIRMED", "2")
    assert (r.name, r.owner, r.queue) == ("climate_run", "user01", "R1042")
    assert r.start_ns == _ns("2026-12-08T09:00:00")
    assert r.end_ns == _ns("2026-12-08T21:00:00")
    assert r.duration_seconds == 43200 == (r.end_ns - r.start_ns) // 10**9
    assert r.nodes == ("cn001", "cn002", "cn003", "cn004")
    assert r.users == ("user01@login1.example.org", "+user02", "-user03")
    assert (r.nodes_requested, r.cpus_requested) == (4, 256)
    assert r.created_ns == _ns("2026-12-07T14:02:11")
    assert r.modified_ns == _ns("2026-12-07T14:02:12")
    raw = json.loads(r.raw_json)
    assert raw["Resv ID"] == "R1042.pbs01"
    assert raw["Resource_List.select"] == "4:ncpus=64"
    assert records["R1043.pbs01"].state == "running"
    assert records["S1044.pbs01"].queue == "S1044"
    assert json.loads(records["S1044.pbs01"].raw_json)["reserve_count"] == "10"


def test_a_state_printed_as_its_number_is_named() -> None:
    records = {r.resv_id: r for r in _parse("pbs_rstat_f.txt")}
    degraded = records["R1045.pbs01"]
    assert (degraded.native_state, degraded.state) == ("RESV_DEGRADED", "degraded")
    # A chunk over two vnodes lists both.
    assert degraded.nodes == ("gpu01[0]", "gpu01[1]")
    unconfirmed = records["R1046.pbs01"]
    assert (unconfirmed.state, unconfirmed.name, unconfirmed.nodes) == ("unconfirmed", None, ())


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("RESV_RUNNING", ("RESV_RUNNING", "running")),
        ("5", ("RESV_RUNNING", "running")),
        ("6", ("RESV_FINISHED", "ended")),
        ("8", ("RESV_DELETED", "deleted")),
        ("99", ("99", "unknown")),
        ("RESV_SOMETHING_NEW", ("RESV_SOMETHING_NEW", "unknown")),
    ],
)
def test_reservation_states(value: str, expected: tuple[str, str]) -> None:
    assert reservation_state(value) == expected


def test_times_are_read_in_the_servers_zone() -> None:
    data = (DATA / "pbs_rstat_f.txt").read_bytes()
    chicago = parse_pbs_rstat(data, cluster="c1", observed_ns=7, zone=ZoneInfo("America/Chicago"))
    utc = _parse("pbs_rstat_f.txt")
    assert chicago[0].start_ns - utc[0].start_ns == 6 * 3600 * 10**9  # CST is UTC-6


def test_unreadable_reservations_are_refused_one_line_each_and_the_rest_kept() -> None:
    refused: list[str] = []
    records = _parse("pbs_rstat_f_broken_entry.txt", refused=refused)
    assert [r.resv_id for r in records] == ["R2001.pbs01"]
    assert len(refused) == 3
    assert refused[0].startswith("R2002.pbs01: reserve_start: 'sometime tomorrow'")
    assert refused[1] == "R2003.pbs01: no reserve_state"
    assert refused[2].startswith("R2004.pbs01: line 37 is not 'name = value'")
    with pytest.raises(ParseError, match=r"R2002\.pbs01"):
        _parse("pbs_rstat_f_broken_entry.txt")


@pytest.mark.parametrize(
    "garbage",
    [
        b"<html><body>502 Bad Gateway</body></html>\n",
        b"Segmentation fault (core dumped)\n",
        b"\x00\x01\x02binary\xff\n",
        b"Resv_ID R1.s\n",
    ],
)
def test_output_that_is_no_listing_is_one_parse_error_naming_the_source(garbage: bytes) -> None:
    with pytest.raises(ParseError) as caught:
        parse_pbs_rstat(garbage, source="pbs_rstat -f on pbs01", cluster="c1", observed_ns=1)
    message = str(caught.value)
    assert "pbs_rstat -f on pbs01" in message
    assert "not pbs_rstat -f output" in message
    assert "\n" not in message


def test_no_reservation_is_an_empty_listing() -> None:
    assert parse_pbs_rstat(b"", cluster="c1", observed_ns=1) == []
    assert parse_pbs_rstat(b"\n\n", cluster="c1", observed_ns=1) == []


def test_epoch_times_and_a_wrapped_value_are_read() -> None:
    data = (
        b"Resv ID: R9.s\nreserve_state = RESV_CONFIRMED\nreserve_start = 1796720400\n"
        b"Authorized_Users = a@h,\n\tb@h\n"
    )
    (r,) = parse_pbs_rstat(data, cluster="c1", observed_ns=1)
    assert r.start_ns == 1796720400 * 10**9
    assert r.users == ("a@h", "b@h")
