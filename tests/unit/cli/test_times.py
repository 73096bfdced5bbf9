"""Times as the command line prints and reads them: local with its zone in
tables, RFC 3339 UTC in JSON and CSV, ``--utc`` for UTC everywhere."""

from __future__ import annotations

import time
from collections.abc import Iterator

import click
import pytest

from collectbus.cli.output import iso, parse_time, when
from collectbus.timefmt import MIN_EPOCH_S, use_utc

NOW = 1_800_000_000 * 10**9
#: 2026-12-07T17:30:43Z, a winter time: CET is one hour ahead.
WINTER_NS = 1_796_664_643 * 10**9


@pytest.fixture
def paris(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "Europe/Paris")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_table_times_name_their_zone(paris: None) -> None:
    assert iso(WINTER_NS) == "2026-12-07 18:30:43 CET"


def test_json_and_csv_times_are_rfc3339_utc_whatever_the_zone(paris: None) -> None:
    assert when(WINTER_NS, "json") == "2026-12-07T17:30:43.000Z"
    assert when(WINTER_NS, "csv") == "2026-12-07T17:30:43.000Z"
    assert when(None, "json") is None
    assert when(None, "table") == ""


def test_use_utc_makes_tables_and_naive_iso_times_utc(paris: None) -> None:
    naive = "2026-12-07T17:30:43"
    assert parse_time(naive, now_ns=NOW) == WINTER_NS - 3600 * 10**9  # 17:30 CET
    use_utc()
    assert iso(WINTER_NS) == "2026-12-07 17:30:43 UTC"
    assert parse_time(naive, now_ns=NOW) == WINTER_NS


@pytest.mark.parametrize("small", ["5", "0", "999999999", "30.5"])
def test_a_bare_small_number_is_refused_with_a_unit_hint(small: str) -> None:
    with pytest.raises(click.BadParameter, match=rf"needs a unit.*e\.g\. {small}m, {small}h"):
        parse_time(small, now_ns=NOW)


def test_a_bare_number_from_2001_on_is_epoch_seconds() -> None:
    assert parse_time(str(MIN_EPOCH_S), now_ns=NOW) == MIN_EPOCH_S * 10**9
    assert parse_time("1700000000.5", now_ns=NOW) == 1_700_000_000_500_000_000
