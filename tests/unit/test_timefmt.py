"""Times as text, shared by the command line and the HTTP API: errors are plain
ValueErrors, which the command line turns into usage errors."""

from __future__ import annotations

import click
import pytest

from collectbus.cli.output import time_window as cli_time_window
from collectbus.timefmt import iso_utc, parse_time, time_window

NOW = 1_800_000_000 * 10**9


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("yesterday-ish", "'yesterday-ish' is not a time; use e.g. 15m"),
        ("1e30", "'1e30' is not a time between 1970 and 9999"),
        ("99999999999d", "'99999999999d' reaches back before 1970"),
    ],
)
def test_a_time_it_cannot_read_is_a_value_error_naming_it(bad: str, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{message}") as caught:
        parse_time(bad, now_ns=NOW)
    assert not isinstance(caught.value, click.ClickException)


def test_a_window_out_of_order_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"^--since must be before --until$"):
        time_window("now", "1h")
    since_ns, until_ns = time_window("2h", "1h")
    assert until_ns - since_ns == 3600 * 10**9


def test_the_command_line_turns_a_bad_window_into_a_usage_error() -> None:
    with pytest.raises(click.BadParameter, match=r"^--since must be before --until$"):
        cli_time_window("now", "1h")
    with pytest.raises(click.BadParameter, match="'soon' is not a time"):
        cli_time_window("soon", "now")


def test_iso_utc_is_rfc3339_with_milliseconds() -> None:
    assert iso_utc(1_700_000_000_123_456_789) == "2023-11-14T22:13:20.123Z"
    assert iso_utc(0) == "1970-01-01T00:00:00.000Z"
