"""The one rule for values a column cannot hold (collectbus.values)."""

from __future__ import annotations

import math

import pytest

from collectbus.values import (
    INT64_MAX,
    INT64_MIN,
    finite,
    fit_counter,
    fit_int64,
    fits_int64,
    out_of_range_details,
)


@pytest.mark.parametrize("value", [INT64_MIN, -1, 0, 1, INT64_MAX])
def test_an_int64_is_kept(value: int) -> None:
    assert fits_int64(value)
    assert fit_int64(value) == value


@pytest.mark.parametrize("value", [INT64_MIN - 1, INT64_MAX + 1, 2**64 - 1, -(10**4000)])
def test_an_integer_past_int64_becomes_null(value: int) -> None:
    assert not fits_int64(value)
    assert fit_int64(value) is None


def test_a_counter_is_never_negative() -> None:
    assert fit_counter(0) == 0
    assert fit_counter(INT64_MAX) == INT64_MAX
    assert fit_counter(-1) is None
    assert fit_counter(2**64 - 1) is None
    assert fit_counter(None) is None


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_nan_and_inf_become_null(value: float) -> None:
    assert finite(value) is None


def test_a_finite_float_is_kept() -> None:
    assert finite(-0.5) == -0.5
    assert finite(None) is None


def test_details_count_every_value_and_name_the_first_ones() -> None:
    assert out_of_range_details([]) == ()
    names = [f"net.eth{i}.rx_bytes" for i in range(25)]
    details = dict(out_of_range_details(names, limit=20))
    assert details["out_of_range"] == "25"
    assert details["out_of_range_fields"].startswith("net.eth0.rx_bytes,net.eth1.rx_bytes")
    assert details["out_of_range_fields"].endswith(",... (5 more)")
