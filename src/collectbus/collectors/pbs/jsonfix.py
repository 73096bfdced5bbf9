"""Tolerant reading of PBS's ``-F json`` output.

PBS writes its JSON by hand (``src/lib/Libjson``), and several releases print
documents that a strict parser refuses. Each known bug is repaired here:

==========================  =====================================  ==========================
quirk                       example                                repair
==========================  =====================================  ==========================
bare leading-zero number    ``"foo":005`` (openpbs #1255)           quoted: ``"005"``
long zero digits            ``"SHA":000…000`` (40 digits)           quoted, digits kept
unquoted ``inf``/``nan``    ``"LIMIT":inf`` (strtod accepts it)     quoted: ``"inf"``
invalid escapes             ``"\\'"``, ``"ab\\,c"`` (#2049)          backslash dropped
control characters          ``"A,B,\\x1c,C"``                       kept in the string
duplicate keys              ``max_queued`` three times (#2677)      kept, as a list
text around the JSON        a ``qstat`` table first (#2675)         dropped (lossy)
not UTF-8                   latin-1 bytes in a job name             decoded as latin-1
==========================  =====================================  ==========================

A payload that is not JSON even then (or nested past Python's recursion
limit) raises :class:`JsonRepairError`; an integer too long for ``int()`` is
read as an infinity, so that only its value is out of range.

Duplicate keys are never lost: when an object names a key more than once, the
key's value becomes the list of every value in document order, and the key is
named in the repairs. A strict parser would keep only the last one.

The fast path is one ``json.loads``, with an ``object_pairs_hook`` because a
plain parse keeps only the last of duplicated keys without a word; the hook
builds each object with one C-level ``dict(pairs)`` and compares its length,
so it costs about 0.7x a plain parse (against 2.3x for counting the keys
after a plain parse, measured on a 5,000-job listing). The repairs run only
when that parse fails. :func:`loads_pbs`
returns the document and the list of repairs, so the collector can say what it
repaired in ``collection_log``. Repairs that may have dropped content (text
around the JSON) are marked lossy: a listing read through one is not complete.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["JsonRepairError", "Repairs", "loads_checked", "loads_pbs", "pairs_hook"]

JsonValue = dict[str, "JsonValue"] | list["JsonValue"] | str | int | float | bool | None


class JsonRepairError(ValueError):
    """The payload is not JSON even after every repair; ``line``/``column`` say where."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None) -> None:
        super().__init__(message)
        self.line = line
        self.column = column


@dataclass(slots=True)
class Repairs:
    """What had to be repaired to read one payload."""

    applied: list[str] = field(default_factory=list)
    #: Keys that came more than once in one object (their values are now lists).
    duplicate_keys: list[str] = field(default_factory=list)
    #: True when a repair may have dropped part of the document.
    lossy: bool = False

    def __bool__(self) -> bool:
        return bool(self.applied or self.duplicate_keys)

    def describe(self) -> str:
        """One line: every repair, and the duplicated keys."""
        parts = list(self.applied)
        if self.duplicate_keys:
            keys = sorted(set(self.duplicate_keys))
            shown = ", ".join(keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")
            parts.append(f"duplicate keys kept as lists: {shown}")
        return "; ".join(parts)


# A JSON number exactly as RFC 8259 allows it.
_JSON_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][-+]?\d+)?")
# Tokens of a damaged document: a string, a number-like run, or a bare word.
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|-?[\d.][\w.+-]*|-?[A-Za-z_]\w*', re.DOTALL)
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
_VALID_ESCAPES = frozenset('"\\/bfnrtu')
_CONTROL = re.compile(r"[\x00-\x1f]")


PairsHook = Callable[[list[tuple[str, JsonValue]]], dict[str, JsonValue]]


def pairs_hook(found: list[str]) -> PairsHook:
    """An ``object_pairs_hook`` that keeps duplicated keys as lists and names them in ``found``."""

    def hook(pairs: list[tuple[str, JsonValue]]) -> dict[str, JsonValue]:
        obj = dict(pairs)
        if len(obj) == len(pairs):
            return obj
        merged: dict[str, JsonValue] = {}
        counts: dict[str, int] = {}
        for key, _value in pairs:
            counts[key] = counts.get(key, 0) + 1
        for key, value in pairs:
            if counts[key] == 1:
                merged[key] = value
                continue
            values = merged.setdefault(key, [])
            assert isinstance(values, list)
            values.append(value)
        found.extend(k for k, n in counts.items() if n > 1)
        return merged

    return hook


def _decode(data: bytes, repairs: Repairs) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        repairs.applied.append(f"not UTF-8 (byte {err.start}); decoded as latin-1")
        return data.decode("latin-1")


def _strip_text(text: str, repairs: Repairs) -> str:
    """Cut what is printed before the first ``{`` line and after the last ``}``."""
    stripped = text.strip()
    if stripped.startswith("{") and stripped.endswith("}"):
        return text
    match = re.search(r"^[ \t]*\{", text, re.MULTILINE)
    start = match.start() if match else text.find("{")
    end = text.rfind("}")
    if start < 0 or end < start:
        return text
    before, after = text[:start].strip(), text[end + 1 :].strip()
    if before or after:
        dropped = len(before) + len(after)
        repairs.applied.append(f"dropped {dropped} characters of text around the JSON")
        repairs.lossy = True
    return text[start : end + 1]


def _fix_escapes(token: str, counts: dict[str, int]) -> str:
    def one(m: re.Match[str]) -> str:
        if m.group(1) in _VALID_ESCAPES:
            return m.group(0)
        counts["escape"] += 1
        return m.group(1)

    if _CONTROL.search(token):
        counts["control"] += 1
    return _ESCAPE.sub(one, token) if "\\" in token else token


def _repair_tokens(text: str, repairs: Repairs) -> str:
    counts = {"escape": 0, "control": 0, "number": 0, "word": 0}
    examples: list[str] = []

    def one(m: re.Match[str]) -> str:
        token = m.group(0)
        if token[0] == '"':
            return _fix_escapes(token, counts)
        if token[0].isalpha() or token[0] == "_" or token[1:2].isalpha():
            if token in ("true", "false", "null"):
                return token
            counts["word"] += 1
        elif _JSON_NUMBER.fullmatch(token):
            return token
        else:
            counts["number"] += 1
        if len(examples) < 3:
            examples.append(token if len(token) <= 12 else token[:9] + "...")
        return json.dumps(token)

    fixed = _TOKEN.sub(one, text)
    if counts["escape"]:
        repairs.applied.append(f"dropped {counts['escape']} invalid backslash escapes")
    if counts["control"]:
        repairs.applied.append(f"kept control characters in {counts['control']} strings")
    if counts["number"] or counts["word"]:
        n = counts["number"] + counts["word"]
        repairs.applied.append(f"quoted {n} bare values that are not JSON ({', '.join(examples)})")
    return fixed


def _big_int(text: str) -> int | float:
    """A JSON integer; one too long for ``int()`` (4,300 digits) is an infinity.

    It is then one value out of range (None where it is read), not a payload
    that cannot be read.
    """
    if len(text) > _INT_DIGITS:
        return float("-inf") if text.startswith("-") else float("inf")
    return int(text)


# Below Python's limit on the digits int() converts (sys.get_int_max_str_digits).
_INT_DIGITS = 4000


def loads_checked(data: bytes, duplicates: list[str]) -> object:
    """``json.loads`` keeping duplicated keys (named in ``duplicates``); raises as it does."""
    return json.loads(data, object_pairs_hook=pairs_hook(duplicates))


def loads_pbs(data: bytes) -> tuple[dict[str, JsonValue], Repairs]:
    """Parse one PBS JSON payload; repair it if a strict parse fails.

    Returns the top-level object and what was repaired (empty when nothing
    was). Raises :class:`JsonRepairError` when the payload is not a JSON
    object even after every repair.
    """
    repairs = Repairs()
    try:
        doc = loads_checked(data, repairs.duplicate_keys)
    except RecursionError as err:
        raise JsonRepairError("not JSON: nested too deeply") from err
    except (ValueError, UnicodeDecodeError):
        repairs.duplicate_keys.clear()
        text = _repair_tokens(_strip_text(_decode(data, repairs), repairs), repairs)
        try:
            doc = json.loads(
                text,
                strict=False,
                object_pairs_hook=pairs_hook(repairs.duplicate_keys),
                parse_int=_big_int,
            )
        except json.JSONDecodeError as err:
            tried = f" after repairs ({repairs.describe()})" if repairs else ""
            raise JsonRepairError(f"not JSON{tried}: {err.msg}", err.lineno, err.colno) from err
        except RecursionError as err:
            raise JsonRepairError("not JSON: nested too deeply") from err
        except ValueError as err:
            raise JsonRepairError(f"not JSON: {str(err)[:120]}") from err
    if not isinstance(doc, dict):
        raise JsonRepairError(f"the top level is a JSON {type(doc).__name__}, not an object")
    return doc, repairs
