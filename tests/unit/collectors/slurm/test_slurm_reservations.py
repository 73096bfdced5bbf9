"""``scontrol show reservation -o`` (recorded on Slurm 22.05.8) read into reservation records."""

from __future__ import annotations

from datetime import UTC
from pathlib import Path

import pytest

from collectbus.collectors.slurm.reservations import parse_scontrol_reservations
from collectbus.errors import ParseError

DATA = Path(__file__).resolve().parents[3] / "data" / "slurm"
#: 2026-12-07T23:20:00Z: after cb_maint started, before cb_future.
NOW = 1796685600 * 10**9


def _parse(data: bytes, **kwargs: object) -> list:  # type: ignore[type-arg]
    return parse_scontrol_reservations(data, cluster="c1", observed_ns=NOW, tz=UTC, **kwargs)  # type: ignore[arg-type]


def test_the_recorded_reservations_are_read() -> None:
    maint, future = _parse((DATA / "scontrol_show_reservation_o_22.05.8.txt").read_bytes())
    assert (maint.resv_id, maint.state, maint.native_state) == ("cb_maint", "running", "ACTIVE")
    assert maint.substate == "MAINT,IGNORE_JOBS,SPEC_NODES"
    assert (maint.nodes, maint.nodes_requested, maint.cpus_requested) == (("localhost",), 1, 2)
    assert maint.queue is None  # PartitionName=(null)
    assert maint.start_ns == 1796685515 * 10**9  # 2026-12-07T23:18:35, the clock in UTC
    assert maint.end_ns - maint.start_ns == 600 * 10**9 == maint.duration_seconds * 10**9
    assert (future.state, future.native_state, future.queue) == ("confirmed", "INACTIVE", "debug")
    assert future.users == ("root", "nobody")
    assert future.substate is None  # Flags= empty
    assert (maint.owner, maint.created_ns) == (None, None)  # Slurm keeps neither


def test_an_inactive_reservation_past_its_end_has_ended() -> None:
    later = 1796690915 * 10**9 + 1
    records = parse_scontrol_reservations(
        (DATA / "scontrol_show_reservation_o_22.05.8.txt").read_bytes(),
        cluster="c1",
        observed_ns=later,
        tz=UTC,
    )
    assert [r.state for r in records] == ["running", "ended"]


def test_no_reservations_in_the_system_is_an_empty_listing() -> None:
    assert _parse((DATA / "scontrol_show_reservation_o_22.05.8_none.txt").read_bytes()) == []


def test_a_line_without_a_name_or_with_a_bad_time_is_refused() -> None:
    data = (
        b"ReservationName=ok StartTime=2026-12-07T23:18:35 EndTime=2026-12-07T23:28:35 State=ACTIVE\n"
        b"StartTime=2026-12-07T23:18:35 State=ACTIVE\n"
        b"ReservationName=bad StartTime=tomorrow State=INACTIVE\n"
    )
    refused: list[str] = []
    assert [r.resv_id for r in _parse(data, refused=refused)] == ["ok"]
    assert refused == ["line 2: no ReservationName", "line 3: StartTime='tomorrow' is not a time"]
    with pytest.raises(ParseError, match="no ReservationName"):
        _parse(data)


def test_garbage_is_one_parse_error() -> None:
    with pytest.raises(ParseError, match="not a line of Key=Value words"):
        _parse(b"slurm_load_reservations error: Unable to contact slurm controller\n")
