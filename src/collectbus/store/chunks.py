"""Chunk encoding for compacted host samples: columns in, bytes out, and back.

Pure functions, no database. A chunk holds the rows of one host, one wide
table and one hour as columns (``time_ns``, the device key, the values). Each
column is turned into 64-bit integers and encoded the same way:

1. NULLs: a bitmap (``numpy.packbits``), present only when the column has any;
   masked slots take the previous valid value so that they cost a zero delta.
2. Delta: the first value, then the differences (int64, wrapping: any two
   int64 values have an exact int64 difference modulo 2**64, so the cumulative
   sum gives them back bit for bit).
3. Zigzag, so small negative deltas become small unsigned numbers, stored in
   the narrowest of 1, 2, 4 or 8 bytes that holds them all.
4. Byte planes: all the low bytes, then all the next bytes, ... (the high
   planes of slowly moving counters are runs of zeros that zstd removes).

How each kind becomes integers:

- int: as is;
- float: the value times 10**k as an integer, for the smallest k in 0..3 that
  gives every value back exactly (loadavg prints two decimals), otherwise the
  float64 bit pattern (exact for every float, NaN payloads included);
- text (device and interface names): a dictionary of the distinct strings and
  one integer code per row.

Everything then goes through zstd at level 3, the measured sweet spot
(a design measurement: blocks of 60, per-column delta, zstd-3: 125 bytes per
sample; docs/architecture.md, "Ingest and chunks").

Payload layout, little-endian, before zstd: a header ``<BIH`` (format
version, rows, columns); per column ``<H`` name length, the UTF-8 name,
``<BBBB`` (kind, flags, width, decimals) and, for text, ``<I`` word count, the
word lengths as ``<u4`` and the words; then, per column in order, the mask
bytes (flag 2) and the ``rows * width`` data bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

import numpy as np
import numpy.typing as npt
import zstandard

#: Stored in ``host_chunks.encoding``; bump it for any change of the layout.
ENCODING_VERSION = 1
ZSTD_LEVEL = 3

_INT, _FLOAT_BITS, _FLOAT_SCALED, _TEXT = 0, 1, 2, 3
_MASKED_ARRAY, _HAS_NULLS = 1, 2
_HEADER = struct.Struct("<BIH")
_COLUMN = struct.Struct("<BBBB")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")

Int64Array = npt.NDArray[np.int64]


class ChunkFormatError(ValueError):
    """A payload that this version cannot decode."""


# ------------------------------------------------------------------ integers


def _ffill(values: Int64Array, mask: npt.NDArray[np.bool_] | None) -> Int64Array:
    """Give masked slots the previous valid value (the first valid one at the start)."""
    if mask is None or not mask.any():
        return values
    if mask.all():
        return np.zeros(len(values), dtype=np.int64)
    index = np.where(mask, 0, np.arange(len(values)))
    np.maximum.accumulate(index, out=index)
    index[: int(np.argmin(mask))] = int(np.argmin(mask))
    return values[index]


def _encode_ints(values: Int64Array) -> tuple[int, bytes]:
    """Delta, zigzag, narrowest width, byte planes: (width, bytes)."""
    if len(values) == 0:
        return 1, b""
    delta = np.empty_like(values)
    delta[0] = values[0]
    np.subtract(values[1:], values[:-1], out=delta[1:])
    zigzag = (delta.view(np.uint64) << np.uint64(1)) ^ (delta >> np.int64(63)).view(np.uint64)
    top = int(zigzag.max())
    width = next(w for w in (1, 2, 4, 8) if top < 1 << (8 * w))
    planes = zigzag.astype(f"<u{width}").view(np.uint8).reshape(len(values), width).T
    return width, planes.tobytes()


def _decode_ints(data: bytes, n_rows: int, width: int) -> Int64Array:
    if n_rows == 0:
        return np.zeros(0, dtype=np.int64)
    planes = np.frombuffer(data, dtype=np.uint8).reshape(width, n_rows)
    zigzag = np.ascontiguousarray(planes.T).view(f"<u{width}").reshape(n_rows)
    zigzag = zigzag.astype(np.uint64)
    delta = ((zigzag >> np.uint64(1)) ^ (np.uint64(0) - (zigzag & np.uint64(1)))).view(np.int64)
    return np.cumsum(delta, dtype=np.int64)


# ------------------------------------------------------------------- columns


def _scaled(values: npt.NDArray[np.float64]) -> tuple[int, Int64Array] | None:
    """(k, values * 10**k) when that integer gives every float back exactly."""
    if not np.isfinite(values).all() or (len(values) and np.abs(values).max() >= 2.0**50):
        return None
    bits = values.view(np.int64)
    for decimals in range(4):
        scale = 10.0**decimals
        ints = np.rint(values * scale).astype(np.int64)
        # Compared as bits, so that -0.0 (which becomes the integer 0) is refused.
        if np.array_equal((ints / scale).view(np.int64), bits):
            return decimals, ints
    return None


def _to_ints(
    name: str, array: npt.NDArray[np.generic], mask: npt.NDArray[np.bool_] | None
) -> tuple[int, int, Int64Array, bytes]:
    """(kind, decimals, integers, extra header bytes) for one column."""
    valid = slice(None) if mask is None else ~mask
    if array.dtype.kind in "iu":
        if array.dtype.kind == "u" and len(array) and int(array[valid].max(initial=0)) >= 2**63:
            raise ValueError(f"column {name!r}: unsigned values above 2**63 - 1")
        return _INT, 0, array.astype(np.int64), b""
    if array.dtype.kind == "f":
        floats = array.astype(np.float64)
        filled = floats if mask is None else np.where(mask, 0.0, floats)
        found = _scaled(filled)
        if found is not None:
            return _FLOAT_SCALED, found[0], found[1], b""
        return _FLOAT_BITS, 0, filled.view(np.int64).copy(), b""
    if array.dtype.kind in "OU":
        words: dict[str, int] = {}
        codes = np.zeros(len(array), dtype=np.int64)
        for i, value in enumerate(array.tolist()):
            if mask is None or not mask[i]:
                if not isinstance(value, str):
                    raise TypeError(f"column {name!r}: text column holds {type(value).__name__}")
                codes[i] = words.setdefault(value, len(words))
        encoded = [w.encode("utf-8", "surrogatepass") for w in words]
        lengths = np.array([len(w) for w in encoded], dtype="<u4")
        extra = _U32.pack(len(encoded)) + lengths.tobytes() + b"".join(encoded)
        return _TEXT, 0, codes, extra
    raise TypeError(f"column {name!r}: cannot encode dtype {array.dtype}")


def encode_chunk(columns: Mapping[str, npt.NDArray[np.generic]]) -> bytes:
    """Encode equal-length columns (int, float, str objects; optionally masked).

    A ``numpy.ma.MaskedArray`` comes back masked from :func:`decode_chunk`;
    integer columns come back as int64, float ones as float64.
    """
    lengths = {len(a) for a in columns.values()}
    if len(lengths) > 1:
        raise ValueError(f"columns of different lengths: {sorted(lengths)}")
    n_rows = lengths.pop() if lengths else 0
    header = [_HEADER.pack(ENCODING_VERSION, n_rows, len(columns))]
    data: list[bytes] = []
    for name, column in columns.items():
        flags, mask = 0, None
        if isinstance(column, np.ma.MaskedArray):
            flags |= _MASKED_ARRAY
            mask = np.ma.getmaskarray(column)
            column = column.data
            if mask.any():
                flags |= _HAS_NULLS
                data.append(np.packbits(mask).tobytes())
            else:
                mask = None
        kind, decimals, ints, extra = _to_ints(name, np.asarray(column), mask)
        width, encoded = _encode_ints(_ffill(ints, mask))
        data.append(encoded)
        raw_name = name.encode("utf-8", "surrogatepass")
        header += [_U16.pack(len(raw_name)), raw_name, _COLUMN.pack(kind, flags, width, decimals)]
        header.append(extra)
    body = b"".join(header + data)
    return zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(body)


def decode_chunk(
    payload: bytes, encoding: int = ENCODING_VERSION
) -> dict[str, npt.NDArray[np.generic]]:
    """Decode a payload of :func:`encode_chunk` back into its columns, exactly."""
    if encoding != ENCODING_VERSION:
        raise ChunkFormatError(f"chunk encoding {encoding} is not supported")
    try:
        body = memoryview(zstandard.ZstdDecompressor().decompress(payload))
        return _decode_body(body)
    except (zstandard.ZstdError, struct.error, ValueError, IndexError) as err:
        raise ChunkFormatError(f"corrupt chunk: {err}") from err


def _decode_body(body: memoryview) -> dict[str, npt.NDArray[np.generic]]:
    version, n_rows, n_cols = _HEADER.unpack_from(body, 0)
    if version != ENCODING_VERSION:
        raise ChunkFormatError(f"chunk format {version} is not supported")
    pos = _HEADER.size
    specs: list[tuple[str, int, int, int, int, list[str]]] = []
    for _ in range(n_cols):
        (size,) = _U16.unpack_from(body, pos)
        name = bytes(body[pos + 2 : pos + 2 + size]).decode("utf-8", "surrogatepass")
        kind, flags, width, decimals = _COLUMN.unpack_from(body, pos + 2 + size)
        pos += 2 + size + _COLUMN.size
        words: list[str] = []
        if kind == _TEXT:
            (count,) = _U32.unpack_from(body, pos)
            sizes = np.frombuffer(body, dtype="<u4", count=count, offset=pos + 4).tolist()
            pos += 4 + 4 * count
            for size in sizes:
                words.append(bytes(body[pos : pos + size]).decode("utf-8", "surrogatepass"))
                pos += size
        specs.append((name, kind, flags, width, decimals, words))
    out: dict[str, npt.NDArray[np.generic]] = {}
    for name, kind, flags, width, decimals, words in specs:
        mask = np.zeros(n_rows, dtype=bool)
        if flags & _HAS_NULLS:
            n_bytes = (n_rows + 7) // 8
            bits = np.frombuffer(body, dtype=np.uint8, count=n_bytes, offset=pos)
            mask = np.unpackbits(bits, count=n_rows).astype(bool)
            pos += n_bytes
        if width not in (1, 2, 4, 8):
            raise ChunkFormatError(f"column {name!r}: bad width {width}")
        ints = _decode_ints(bytes(body[pos : pos + n_rows * width]), n_rows, width)
        pos += n_rows * width
        values = _from_ints(name, kind, decimals, ints, words, mask)
        out[name] = np.ma.MaskedArray(values, mask=mask) if flags & _MASKED_ARRAY else values
    if pos != len(body):
        raise ChunkFormatError(f"{len(body) - pos} trailing bytes")
    return out


def _from_ints(
    name: str,
    kind: int,
    decimals: int,
    ints: Int64Array,
    words: list[str],
    mask: npt.NDArray[np.bool_],
) -> npt.NDArray[np.generic]:
    if kind == _INT:
        return np.where(mask, 0, ints)
    if kind == _FLOAT_BITS:
        return np.where(mask, 0.0, ints.view(np.float64))
    if kind == _FLOAT_SCALED:
        return np.where(mask, 0.0, ints / 10.0**decimals)
    if kind == _TEXT:
        text = np.empty(len(ints), dtype=object)
        valid = ~mask
        text[valid] = np.array(words, dtype=object)[ints[valid]] if valid.any() else []
        return text
    raise ChunkFormatError(f"column {name!r}: unknown kind {kind}")
