"""Chunk encoding: exact round trips (Hypothesis) and a sane size."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from collectbus.store.chunks import ChunkFormatError, decode_chunk, encode_chunk

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
SMALL_DECIMALS = st.integers(-100_000, 100_000).map(lambda i: i / 100)
FLOATS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), SMALL_DECIMALS)
TEXT = st.text(max_size=12)


def _same(a: npt.NDArray[Any], b: npt.NDArray[Any]) -> bool:
    """Equal types, masks and unmasked values (floats compared bit for bit)."""
    if isinstance(a, np.ma.MaskedArray) != isinstance(b, np.ma.MaskedArray):
        return False
    mask = np.ma.getmaskarray(a)
    if not np.array_equal(mask, np.ma.getmaskarray(b)):
        return False
    x, y = np.ma.getdata(a)[~mask], np.ma.getdata(b)[~mask]
    if x.dtype.kind == "f":
        return x.dtype == y.dtype and np.array_equal(x.view(np.int64), y.view(np.int64))
    return x.dtype == y.dtype and x.tolist() == y.tolist()


@st.composite
def columns(draw: st.DrawFn) -> dict[str, npt.NDArray[Any]]:
    n = draw(st.integers(0, 40))
    out: dict[str, npt.NDArray[Any]] = {}
    for i in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["int", "float", "text", "counter"]))
        if kind == "int":
            data: npt.NDArray[Any] = np.array(
                draw(st.lists(INT64, min_size=n, max_size=n)), dtype=np.int64
            )
        elif kind == "counter":
            steps = draw(st.lists(st.integers(0, 10_000), min_size=n, max_size=n))
            data = np.cumsum(np.array(steps, dtype=np.int64)) + draw(st.integers(0, 2**40))
        elif kind == "float":
            data = np.array(draw(st.lists(FLOATS, min_size=n, max_size=n)), dtype=np.float64)
        else:
            data = np.array(draw(st.lists(TEXT, min_size=n, max_size=n)), dtype=object).reshape(n)
        if draw(st.booleans()):
            mask = draw(hnp.arrays(np.bool_, n))
            data = np.ma.MaskedArray(data, mask=mask)
        out[draw(st.text(min_size=1, max_size=8)) + str(i)] = data
    return out


@settings(max_examples=300, deadline=None)
@given(columns())
def test_round_trip_is_exact(cols: dict[str, npt.NDArray[Any]]) -> None:
    decoded = decode_chunk(encode_chunk(cols))
    assert list(decoded) == list(cols)
    for name, column in cols.items():
        assert _same(column, decoded[name]), name


@given(st.lists(INT64, min_size=1, max_size=50))
def test_extreme_integers(values: list[int]) -> None:
    column = np.array([*values, 2**63 - 1, -(2**63), 0], dtype=np.int64)
    assert decode_chunk(encode_chunk({"v": column}))["v"].tolist() == column.tolist()


def test_special_floats_keep_their_bits() -> None:
    special = np.array([-0.0, 0.0, np.inf, -np.inf, np.nan, 5e-324, 0.57, 1.0 / 3])
    payload = np.frombuffer(np.array([0x7FF8DEADBEEF0001], dtype=np.int64).tobytes(), np.float64)
    column = np.concatenate([special, payload])
    out = decode_chunk(encode_chunk({"f": column}))["f"]
    assert out.view(np.int64).tolist() == column.view(np.int64).tolist()


def test_nulls_and_empty_columns() -> None:
    n = 10
    cols: dict[str, npt.NDArray[Any]] = {
        "all_null": np.ma.MaskedArray(np.zeros(n, dtype=np.int64), mask=np.ones(n, bool)),
        "no_null": np.ma.MaskedArray(np.arange(n), mask=np.zeros(n, bool)),
        "text": np.ma.MaskedArray(np.array(["a"] * n, dtype=object), mask=[True] * n),
    }
    out = decode_chunk(encode_chunk(cols))
    assert out["all_null"].mask.all()
    assert isinstance(out["no_null"], np.ma.MaskedArray)
    assert not out["no_null"].mask.any()
    assert out["text"].mask.all()
    empty = decode_chunk(encode_chunk({"t": np.zeros(0, dtype=np.int64)}))
    assert empty["t"].dtype == np.int64
    assert len(empty["t"]) == 0


def test_slow_counters_compress_to_well_under_a_byte_per_value() -> None:
    rng = np.random.default_rng(1)
    n = 3600
    counters = {f"c{i}": np.cumsum(rng.integers(0, 50, n)) + 10**12 for i in range(20)}
    counters["time_ns"] = 1_700_000_000 * 10**9 + np.arange(n) * 10**9
    constant = {f"k{i}": np.full(n, 12345, dtype=np.int64) for i in range(100)}
    size = len(encode_chunk({**counters, **constant}))
    assert size / n < 30  # 121 values per row: about 6 bits for each random delta


def test_corrupt_or_unknown_payloads_are_refused() -> None:
    payload = encode_chunk({"v": np.arange(100)})
    with pytest.raises(ChunkFormatError):
        decode_chunk(payload[:-5])
    with pytest.raises(ChunkFormatError):
        decode_chunk(b"not zstd at all")
    with pytest.raises(ChunkFormatError, match="encoding 99"):
        decode_chunk(payload, encoding=99)


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="different lengths"):
        encode_chunk({"a": np.arange(3), "b": np.arange(4)})
    with pytest.raises(TypeError, match="text column"):
        encode_chunk({"a": np.array(["x", 3], dtype=object)})
    with pytest.raises(TypeError, match="dtype"):
        encode_chunk({"a": np.array([1 + 2j])})
