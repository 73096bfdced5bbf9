"""The tolerant JSON reader, on every recorded quirk of PBS's ``-F json``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from collectbus.collectors.pbs.jsonfix import JsonRepairError, loads_pbs

DATA = Path(__file__).resolve().parents[3] / "data" / "pbs"
QUIRKS = DATA / "quirks"


def _vars(doc: dict[str, object]) -> object:
    jobs = doc["Jobs"]
    assert isinstance(jobs, dict)
    return jobs["1.pbs"]["Variable_List"]


@pytest.mark.parametrize("path", sorted(DATA.glob("*.json")), ids=lambda p: p.name)
def test_real_outputs_take_the_fast_path_unrepaired(path: Path) -> None:
    doc, repairs = loads_pbs(path.read_bytes())
    assert not repairs
    assert doc == json.loads(path.read_bytes())


def test_a_bare_leading_zero_number_is_kept_as_its_text() -> None:
    doc, repairs = loads_pbs((QUIRKS / "leading_zero_number_issue1255.json").read_bytes())
    assert _vars(doc) == {"foo": "005"}
    assert "quoted 1 bare values" in repairs.describe()
    assert not repairs.lossy


def test_forty_zero_digits_keep_every_digit() -> None:
    doc, _ = loads_pbs((QUIRKS / "long_zero_digits_pbs_monitor.json").read_bytes())
    assert _vars(doc) == {"CI_COMMIT_BEFORE_SHA": "0" * 40, "X": "y"}


def test_unquoted_inf_becomes_a_string() -> None:
    doc, repairs = loads_pbs((QUIRKS / "inf_unquoted_strtod.json").read_bytes())
    assert _vars(doc) == {"LIMIT": "inf"}
    assert "(inf)" in repairs.describe()


def test_invalid_escapes_lose_their_backslash() -> None:
    doc, repairs = loads_pbs((QUIRKS / "invalid_escape_issue2049.json").read_bytes())
    assert _vars(doc) == {"MYVAR": "'\"asads\"'", "MYVAR2": "ab,c"}
    assert "dropped 3 invalid backslash escapes" in repairs.describe()


def test_a_control_character_is_kept_in_its_string() -> None:
    doc, repairs = loads_pbs((QUIRKS / "control_char_x1c.json").read_bytes())
    assert _vars(doc) == {"var1": "A,B,\x1c,C,D"}
    assert "control characters" in repairs.describe()


def test_duplicate_keys_are_all_kept_as_a_list() -> None:
    doc, repairs = loads_pbs((QUIRKS / "duplicate_keys_issue2677.json").read_bytes())
    queue = doc["Queue"]["QueueA"]  # type: ignore[index]
    assert queue["max_queued"] == ["[o:PBS_ALL=10]", "[u:PBS_GENERIC=2]", "[u:tom=15]"]
    assert queue["enabled"] == "True"
    assert repairs.duplicate_keys == ["max_queued"]
    assert "duplicate keys kept as lists: max_queued" in repairs.describe()


def test_text_before_the_json_is_cut_and_marked_lossy() -> None:
    doc, repairs = loads_pbs((QUIRKS / "mixed_text_and_json_issue2675.txt").read_bytes())
    assert doc == {"timestamp": 1749572608, "pbs_version": "23.06.06", "pbs_server": "VMa"}
    assert repairs.lossy
    assert "characters of text around the JSON" in repairs.describe()


def test_latin1_bytes_are_decoded_as_latin1() -> None:
    payload = b'{"Jobs":{"1.pbs":{"Job_Name":"caf\xe9"}}}'
    doc, repairs = loads_pbs(payload)
    assert doc["Jobs"] == {"1.pbs": {"Job_Name": "café"}}
    assert "decoded as latin-1" in repairs.describe()


def test_several_quirks_at_once_are_all_repaired() -> None:
    payload = b'noise\n{"a":007,"b":"x\\,y","c":"\x01","b":-inf}\n'
    doc, repairs = loads_pbs(payload)
    assert doc == {"a": "007", "b": ["x,y", "-inf"], "c": "\x01"}
    assert repairs.lossy


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b'{"Jobs":{"1.pbs":{"Job_Name":"cut off',
        (QUIRKS / "connect_error_stderr_issue_baw776.txt").read_bytes(),
        b'["not", "an", "object"]',
    ],
    ids=["empty", "truncated", "stderr-text", "array"],
)
def test_what_cannot_be_repaired_raises_with_the_position(payload: bytes) -> None:
    with pytest.raises(JsonRepairError) as info:
        loads_pbs(payload)
    assert str(info.value)


def test_a_key_separator_inside_a_string_is_not_taken_for_a_duplicate() -> None:
    payload = b'{"Jobs":{"1.s":{"comment":"said \\":\\" twice\\":","job_state":"Q"}}}'
    doc, repairs = loads_pbs(payload)
    assert doc == json.loads(payload)
    assert not repairs


def test_a_duplicate_nested_in_a_list_is_found() -> None:
    payload = b'{"nodes":{"n1":{"jobs":[{"a":1,"a":2}]}}}'
    doc, repairs = loads_pbs(payload)
    assert doc == {"nodes": {"n1": {"jobs": [{"a": [1, 2]}]}}}
    assert repairs.duplicate_keys == ["a"]
