"""PBS attribute formats, with values taken from the recorded outputs."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from collectbus.collectors.pbs import fields as f

NS = 1_000_000_000
CHICAGO = ZoneInfo("America/Chicago")
PRAGUE = ZoneInfo("Europe/Prague")


def test_times_are_read_in_the_servers_zone_and_converted_to_utc() -> None:
    # Aurora prints mtime "Wed Jul 16 17:47:36 2025" for history_timestamp 1752706056:
    # CDT is UTC-5, so 17:47:36 local is 22:47:36 UTC.
    assert f.parse_time("Wed Jul 16 17:47:36 2025", CHICAGO) == 1752706056 * NS
    # MetaCentrum's ctime, with the day padded by a space; CEST is UTC+2.
    assert f.parse_time("Tue Oct  4 21:23:20 2022", PRAGUE) == 1664911400 * NS
    # The same wall time in winter (CET, UTC+1) is one hour further from UTC.
    assert f.parse_time("Tue Jan  4 21:23:20 2022", PRAGUE) == 1641327800 * NS


def test_the_repeated_hour_takes_its_first_occurrence() -> None:
    # Europe/Prague went from 03:00 CEST back to 02:00 CET on 30 Oct 2022.
    first = f.parse_time("Sun Oct 30 02:30:00 2022", PRAGUE)
    assert first == 1667089800 * NS  # 00:30 UTC, still CEST


@pytest.mark.parametrize(
    "text", ["", "Tue Oct 4 2022", "Tue Okt  4 21:23:20 2022", "Tue Oct  4 25:23:20 2022"]
)
def test_a_time_that_is_not_pbs_format_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a PBS time"):
        f.parse_time(text, PRAGUE)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("2090:06:18", 2090 * 3600 + 6 * 60 + 18),  # Aurora eligible_time, 87 days
        ("45682:59:56", 45682 * 3600 + 59 * 60 + 56),  # Aurora cput
        ("06:00:00", 21600),
        ("00:00:00", 0),
        ("10:30", 630),
        ("45", 45),
        (60, 60),
    ],
)
def test_durations_pass_24_hours(value: str | int, seconds: int) -> None:
    assert f.parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["1:2:3:4", "ab:cd", True, None])
def test_bad_durations_are_refused(value: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        f.parse_duration(value)


@pytest.mark.parametrize(
    ("value", "size"),
    [
        ("8gb", 8 * 1024**3),
        ("4194304kb", 4 * 1024**3),  # MetaCentrum exec_vnode mem, = 4gb
        ("151384560kb", 151384560 * 1024),
        ("740393mb", 740393 * 1024**2),
        ("0b", 0),
        ("25tb", 25 * 1024**4),
        ("2w", 16),
        ("3kw", 3 * 1024 * 8),
        ("512", 512),
        ("8GB", 8 * 1024**3),
        (4294967296, 4294967296),
    ],
)
def test_sizes_become_bytes(value: str | int, size: int) -> None:
    assert f.parse_size(value) == size


@pytest.mark.parametrize("value", ["8 gigabytes", "gb", "-1kb", "1.5gb", True])
def test_bad_sizes_are_refused(value: object) -> None:
    with pytest.raises(ValueError, match="size"):
        f.parse_size(value)


def test_exec_host_gives_each_host_once_in_order() -> None:
    assert f.parse_exec_host("charon24/0*2+charon21/0*2") == ("charon24", "charon21")
    assert f.parse_exec_host("n1/0+n1/1+n2/0-3") == ("n1", "n2")
    # exec_host2 adds the MoM port.
    assert f.parse_exec_host("charon24.nti.tul.cz:15002/0*2+charon21.nti.tul.cz:15002/0*2") == (
        "charon24.nti.tul.cz",
        "charon21.nti.tul.cz",
    )
    with pytest.raises(ValueError, match="empty host"):
        f.parse_exec_host("a/0++b/0")


def test_exec_vnode_gives_vnodes_and_their_resources() -> None:
    chunks = f.parse_exec_vnode("(charon24:ncpus=2:mem=4194304kb)+(charon21:ncpus=2:mem=4194304kb)")
    assert chunks == (
        ("charon24", (("ncpus", "2"), ("mem", "4194304kb"))),
        ("charon21", (("ncpus", "2"), ("mem", "4194304kb"))),
    )
    spread = f.parse_exec_vnode("(vnA:ncpus=1+vnB:ncpus=1)+(vnC:ncpus=4)")
    assert [name for name, _ in spread] == ["vnA", "vnB", "vnC"]
    with pytest.raises(ValueError, match="resource=value"):
        f.parse_exec_vnode("(vn:ncpus)")


@pytest.mark.parametrize(
    ("status", "signal"),
    [
        *[(None, None), (0, None), (1, None), (127, None), (-29, None), (-1, None)],
        *[(137, 9), (143, 15), (265, 9), (271, 15), (256, None)],
    ],
)
def test_exit_signals_follow_the_pbs_exit_codes(status: int | None, signal: int | None) -> None:
    assert f.exit_signal(status) == signal


def test_state_count_and_booleans() -> None:
    assert f.parse_state_count("Transit:0 Queued:150 Held:44 Waiting:0 Running:72 ") == (
        ("Transit", 0),
        ("Queued", 150),
        ("Held", 44),
        ("Waiting", 0),
        ("Running", 72),
    )
    with pytest.raises(ValueError, match="State:count"):
        f.parse_state_count("Transit:x")
    assert f.parse_bool("True") is True
    assert f.parse_bool("False") is False
    with pytest.raises(ValueError, match="not a boolean"):
        f.parse_bool("maybe")


@pytest.mark.parametrize(
    ("letter", "substate", "status", "state"),
    [
        ("Q", 10, None, "queued"),
        ("W", 30, None, "queued"),
        ("T", 0, None, "queued"),
        ("H", 20, None, "held"),
        ("R", 42, None, "running"),
        ("E", 50, None, "running"),
        ("B", 42, None, "running"),
        ("S", 43, None, "suspended"),
        ("U", 45, None, "suspended"),
        ("F", 92, 0, "completed"),
        ("F", 93, -29, "timeout"),
        ("F", 93, 1, "failed"),
        ("F", 93, 271, "failed"),
        ("F", 91, None, "cancelled"),
        ("F", 91, 271, "cancelled"),
        ("F", 92, None, "completed"),
        ("F", 93, None, "failed"),
        ("F", None, None, "unknown"),
        ("X", 92, 0, "completed"),
        ("M", None, None, "unknown"),
        ("Z", None, None, "unknown"),
    ],
)
def test_job_states_map_to_neutral_states(
    letter: str, substate: int | None, status: int | None, state: str
) -> None:
    assert f.job_state(letter, substate, status) == state
