from __future__ import annotations

import datetime as dt
import json
import re

import click
import pytest

from collectbus.cli.jobformat import duration
from collectbus.cli.output import parse_time, render

NOW = 1_800_000_000 * 10**9


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW),
        ("15m", NOW - 15 * 60 * 10**9),
        ("2h", NOW - 2 * 3600 * 10**9),
        ("1d", NOW - 86400 * 10**9),
        ("1700000000", 1_700_000_000 * 10**9),
        (
            "2026-11-24T10:00:00+00:00",
            int(dt.datetime(2026, 11, 24, 10, tzinfo=dt.UTC).timestamp()) * 10**9,
        ),
    ],
)
def test_parse_time(text: str, expected: int) -> None:
    assert parse_time(text, now_ns=NOW) == expected


def test_parse_time_rejects_nonsense() -> None:
    with pytest.raises(click.BadParameter, match="not a time"):
        parse_time("yesterday-ish", now_ns=NOW)


def test_render_json_csv_table(capsys: pytest.CaptureFixture[str]) -> None:
    rows = [{"a": 1, "b": float("nan"), "c": "x"}, {"a": 2, "b": 1.5, "c": None}]
    render(rows, "json")
    assert json.loads(capsys.readouterr().out) == [
        {"a": 1, "b": None, "c": "x"},
        {"a": 2, "b": 1.5, "c": None},
    ]
    render(rows, "csv", columns=["a", "b"])
    assert capsys.readouterr().out.splitlines() == ["a,b", "1,", "2,1.5"]
    render(rows, "table", title="t")
    out = capsys.readouterr().out
    assert "1.50" in out
    assert "x" in out


@pytest.mark.parametrize("bad", ["inf", "nan", "1e30", "-5", "99999999999d"])
def test_parse_time_rejects_out_of_range(bad: str) -> None:
    with pytest.raises(click.BadParameter):
        parse_time(bad, now_ns=NOW)


def test_tables_show_booleans_as_yes_and_no(capsys: pytest.CaptureFixture[str]) -> None:
    rows = [{"queue": "workq", "enabled": True, "started": False}]
    render(rows, "table")
    out = capsys.readouterr().out
    assert "True" not in out
    assert "False" not in out
    assert re.findall(r"\b(?:yes|no)\b", out) == ["yes", "no"]
    render(rows, "json")  # JSON keeps real booleans
    assert json.loads(capsys.readouterr().out) == [
        {"queue": "workq", "enabled": True, "started": False}
    ]


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (168, "00:02:48"),
        (21743, "06:02:23"),
        (3 * 86400 + 4 * 3600 + 5 * 60 + 6, "3d 04:05:06"),
        (-90, "-00:01:30"),
        (None, ""),
        (float("nan"), ""),
    ],
)
def test_durations_read_one_way_in_a_column(seconds: float | None, shown: str) -> None:
    assert duration(seconds) == shown
