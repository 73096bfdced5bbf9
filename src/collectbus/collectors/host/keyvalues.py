"""Cached layouts of the key-value files, meminfo and vmstat (see :mod:`.layouts`).

Their lines are ``Key: value [kB]`` and ``key value``, keys that the
:mod:`collectbus.procfields` columns put in a fixed order. The fast path checks
a file by its skeleton (the file with its digits deleted) and by its key
tokens. The skeleton fixes every byte but the digits, so each key stays on its
line; a key starts its line (no blank before it, which learning checks) and
has a byte that is not a digit, so with every key pinned at its position each
line keeps its count of tokens, and the tokens between the keys are the
values. That costs less than pinning the line ends as :mod:`.layouts` does, in
the largest file of a sample.

The skeleton also rules out a minus sign: a layout is kept only when its fast
path gave what the pure parser did, which it cannot for a file with a negative
value (the pure parser makes it None), so a ``-`` before a value is a byte the
skeleton lacks. What remains is a value past ``2**63 - 1``, which one ``sum``
of the converted values rules out (see :mod:`.layouts`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from operator import itemgetter, mul
from typing import cast

from collectbus.collectors.host import parse
from collectbus.collectors.host.layouts import CachedParser, Getter, getter, to_int
from collectbus.collectors.host.numbers import INT64_MAX
from collectbus.collectors.host.parse import KeyValues
from collectbus.procfields import MEMINFO_KEYS, VMSTAT_COLUMNS

__all__ = ["MeminfoParser", "VmstatParser"]

IntGetter = Callable[[list[int | None]], tuple[int | None, ...]]

_DIGITS = b"0123456789"


def _keys_start_lines(data: bytes) -> bool:
    """True when no line is blank or starts with a blank, so each starts with its key.

    Then no digits can stand as a token of their own before a key: in the
    skeleton nothing but the key's first byte follows a newline.
    """
    return all(line[:1] and not line[:1].isspace() for line in data.split(b"\n")[:-1])


def _column_order(file_keys: list[bytes], column_keys: list[bytes]) -> IntGetter | None:
    """Map values in file order to column order, None where the file lacks a key.

    The values get a None appended, which is what a missing column picks. No
    getter at all (None) when the file's keys are exactly the columns.
    """
    if file_keys == column_keys:
        return None
    where = {key: i for i, key in enumerate(file_keys)}
    missing = len(file_keys)
    return itemgetter(*(where.get(key, missing) for key in column_keys))


def _in_columns(
    values: list[int | None], columns: IntGetter | None, unknown_keys: tuple[str, ...]
) -> KeyValues:
    if columns is None:
        return KeyValues(tuple(values), unknown_keys)
    values.append(None)
    return KeyValues(columns(values), unknown_keys)


@dataclass(slots=True, frozen=True)
class _MeminfoLayout:
    skeleton: bytes
    tokens: int
    pinned: Getter  # the positions of the keys and units ...
    pinned_tokens: tuple[bytes, ...]  # ... and what must be there
    values: Getter
    scale: tuple[int, ...]  # 1024 for a value in kB, 1 for a count
    columns: IntGetter | None
    unknown_keys: tuple[str, ...]


_MEMINFO_COLUMN_KEYS = [key.encode() for key, _ in MEMINFO_KEYS]


class MeminfoParser(CachedParser[KeyValues, _MeminfoLayout]):
    """/proc/meminfo: ``Key: value [kB]`` lines, keys and units pinned in place."""

    def _pure(self, data: bytes) -> KeyValues:
        return parse.parse_meminfo_detail(data, self.source, replaced=self._replaced)

    def _learn(self, data: bytes, result: KeyValues) -> _MeminfoLayout | None:
        if not _keys_start_lines(data):
            return None
        keys: list[bytes] = []
        pinned: list[int] = []
        values: list[int] = []
        scale: list[int] = []
        position = 0
        for line in data.split(b"\n"):
            fields = line.split()
            if not fields:
                continue
            if not fields[0].endswith(b":") or len(fields) > 3:
                return None
            keys.append(fields[0][:-1])
            pinned.append(position)
            values.append(position + 1)
            scale.append(1024 if len(fields) == 3 else 1)
            if len(fields) == 3:
                pinned.append(position + 2)
            position += len(fields)
        if len(values) < 2:
            return None
        tokens = data.split()
        return _MeminfoLayout(
            skeleton=data.translate(None, _DIGITS),
            tokens=len(tokens),
            pinned=getter(pinned),
            pinned_tokens=tuple(tokens[i] for i in pinned),
            values=getter(values),
            scale=tuple(scale),
            columns=_column_order(keys, _MEMINFO_COLUMN_KEYS),
            unknown_keys=result.unknown_keys,
        )

    def _fast(self, layout: _MeminfoLayout, data: bytes) -> KeyValues | None:
        if data.translate(None, _DIGITS) != layout.skeleton:
            return None
        tokens = data.split()
        if len(tokens) != layout.tokens or layout.pinned(tokens) != layout.pinned_tokens:
            return None
        numbers = list(map(mul, map(to_int, layout.values(tokens)), layout.scale))
        if sum(numbers) > INT64_MAX:
            return None  # the pure parser names the values out of range
        return _in_columns(cast("list[int | None]", numbers), layout.columns, layout.unknown_keys)


@dataclass(slots=True, frozen=True)
class _VmstatLayout:
    skeleton: bytes
    tokens: int
    keys: list[bytes]
    columns: IntGetter | None
    unknown_keys: tuple[str, ...]


_VMSTAT_COLUMN_KEYS = [key.encode() for key in VMSTAT_COLUMNS]


class VmstatParser(CachedParser[KeyValues, _VmstatLayout]):
    """/proc/vmstat: ``key value`` lines, so the keys are every other token."""

    def _pure(self, data: bytes) -> KeyValues:
        return parse.parse_vmstat_detail(data, self.source, replaced=self._replaced)

    def _learn(self, data: bytes, result: KeyValues) -> _VmstatLayout | None:
        tokens = data.split()
        keys = tokens[0::2]
        if (
            len(keys) < 2
            or not _keys_start_lines(data)
            or not all(key.translate(None, _DIGITS) for key in keys)
        ):
            return None
        return _VmstatLayout(
            skeleton=data.translate(None, _DIGITS),
            tokens=len(tokens),
            keys=keys,
            columns=_column_order(keys, _VMSTAT_COLUMN_KEYS),
            unknown_keys=result.unknown_keys,
        )

    def _fast(self, layout: _VmstatLayout, data: bytes) -> KeyValues | None:
        if data.translate(None, _DIGITS) != layout.skeleton:
            return None
        tokens = data.split()
        if len(tokens) != layout.tokens or tokens[0::2] != layout.keys:
            return None
        if layout.columns is None:  # the keys are the columns: no list to reorder
            values = tuple(map(to_int, tokens[1::2]))
            if sum(values) > INT64_MAX:
                return None  # the pure parser names the values out of range
            return KeyValues(values, layout.unknown_keys)
        numbers = list(map(to_int, tokens[1::2]))
        if sum(numbers) > INT64_MAX:
            return None
        return _in_columns(cast("list[int | None]", numbers), layout.columns, layout.unknown_keys)
