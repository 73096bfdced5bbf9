"""The names smartswitch's call history used, on CallRecorder: slower_than(threshold=),
stats() entries as mappings and sort_by=, short handler names, serialize=."""

from __future__ import annotations

import contextlib
import json
import os

import pytest
from tests.unit.calls.call_doubles import WALL_START_NS, ManualClock

from collectbus.calls import CallRecorder
from collectbus.calls.capture import MORE
from collectbus.calls.stats import SEED_KEYS, SORT_KEYS

# (handler, elapsed ns, fails): three handlers, two of them named "process".
SCRIPT = [
    ("api.process", 300, False),
    ("db.query", 100, True),
    ("api.process", 500, False),
    ("jobs.process", 50, False),
    ("db.query", 200, False),
    ("api.process", 400, True),
]


@pytest.fixture
def calls() -> CallRecorder:
    clock = ManualClock()
    collector = CallRecorder(clock=clock)
    wrapped = {}
    for name in {name for name, _, _ in SCRIPT}:

        def handler(elapsed: int, fails: bool, _name: str = name) -> None:
            clock.advance(elapsed)
            if fails:
                raise ValueError(f"{_name} failed")

        wrapped[name] = collector.wrap(handler, name=name)
    for name, elapsed, fails in SCRIPT:
        with contextlib.suppress(ValueError):
            wrapped[name](elapsed, fails)
        clock.advance(1000)
    return collector


def _expected(name: str) -> dict[str, object]:
    """smartswitch's statistics of one handler, worked out from SCRIPT alone."""
    times = [e / 1e9 for n, e, _ in SCRIPT if n == name]
    starts = []
    now = 0
    for n, e, _ in SCRIPT:
        if n == name:
            starts.append(now)
        now += e + 1000
    return {
        "calls": len(times),
        "errors": sum(1 for n, _, f in SCRIPT if n == name and f),
        "avg_time": sum(times) / len(times),
        "min_time": min(times),
        "max_time": max(times),
        "total_time": sum(times),
        "last_call": (WALL_START_NS + starts[-1]) / 1e9,
    }


def test_slower_than_takes_threshold_by_keyword_or_seconds_by_position(
    calls: CallRecorder,
) -> None:
    by_keyword = calls.slower_than(threshold=300e-9)
    assert [r.elapsed_ns for r in by_keyword] == [300, 500, 400]
    assert calls.slower_than(300e-9) == by_keyword
    assert calls.slower_than(seconds=300e-9) == by_keyword
    with pytest.raises(TypeError, match="threshold"):
        calls.slower_than(0.1, threshold=0.1)
    with pytest.raises(TypeError, match="threshold"):
        calls.slower_than()


def test_stats_entries_read_as_smartswitchs_dicts(calls: CallRecorder) -> None:
    table = calls.stats()
    for name in ("api.process", "db.query", "jobs.process"):
        entry = table[name]
        assert {k: entry[k] for k in SEED_KEYS} == pytest.approx(_expected(name))
        assert list(entry)[: len(SEED_KEYS)] == list(SEED_KEYS)
        # collectbus's own attributes stay, and are keys too.
        assert entry.avg_s == entry["avg_s"] == entry.avg_time
        assert entry["p95_s"] == entry.p95_s
    assert dict(table["db.query"])["errors"] == 1
    with pytest.raises(KeyError):
        table["api.process"]["no_such_key"]


def test_stats_sort_by_puts_the_largest_first_and_names_a_to_z(calls: CallRecorder) -> None:
    by_avg = calls.stats(sort_by="avg_time")
    averages = {n: _expected(n)["avg_time"] for n in ("api.process", "db.query", "jobs.process")}
    assert list(by_avg) == sorted(averages, key=lambda n: -float(averages[n]))  # type: ignore[arg-type]
    # One error each for the first two: a tie goes by name.
    assert list(calls.stats(sort_by="errors")) == ["api.process", "db.query", "jobs.process"]
    assert list(calls.stats(sort_by="calls")) == ["api.process", "db.query", "jobs.process"]
    assert list(calls.stats(sort_by="handler")) == ["api.process", "db.query", "jobs.process"]
    assert list(calls.stats(sort_by="max_time")) == ["api.process", "db.query", "jobs.process"]
    assert set(SEED_KEYS) <= set(SORT_KEYS)
    with pytest.raises(ValueError, match="sort_by must be one of calls, errors"):
        calls.stats(sort_by="speed")


def test_a_handler_without_held_calls_sorts_last() -> None:
    calls = CallRecorder()
    busy = calls.wrap(lambda: None, name="busy")
    calls.wrap(lambda: None, name="idle")
    busy()
    assert list(calls.stats(sort_by="max_time")) == ["busy", "idle"]
    assert calls.stats(sort_by="max_time")["idle"]["max_time"] is None


def test_a_short_name_finds_the_handler_it_ends_with(calls: CallRecorder) -> None:
    assert [r.handler for r in calls.history(handler="query")] == ["db.query"] * 2
    assert calls.history(handler="query") == calls.history(handler="db.query")
    assert [r.elapsed_ns for r in calls.errors(handler="query")] == [100]
    assert [r.elapsed_ns for r in calls.slowest(1, handler="query")] == [200]
    assert calls.stats("query").handler == "db.query"
    assert calls.stats()["query"]["calls"] == 2  # the table finds short names too
    assert calls.history(handler="nobody") == []  # unknown: nothing recorded yet
    assert calls.stats("nobody").calls == 0


@pytest.mark.parametrize(
    "query",
    [
        lambda c: c.history(handler="process"),
        lambda c: c.slowest(3, handler="process"),
        lambda c: c.slower_than(threshold=0, handler="process"),
        lambda c: c.stats("process"),
        lambda c: c.stats()["process"],
    ],
)
def test_an_ambiguous_short_name_is_an_error_naming_the_candidates(
    calls: CallRecorder, query: object
) -> None:
    with pytest.raises(ValueError, match=r"'process' is ambiguous: .*api\.process, jobs\.process"):
        query(calls)  # type: ignore[operator]


def test_a_full_name_wins_over_a_tail() -> None:
    calls = CallRecorder()
    calls.wrap(lambda: 1, name="process")()
    calls.wrap(lambda: 2, name="api.process")()
    assert [r.handler for r in calls.history(handler="process")] == ["process"]


class Opaque:
    """No JSON form, a str() of its own."""

    def __str__(self) -> str:
        return "<opaque 7>"


class Broken:
    def __str__(self) -> str:
        raise RuntimeError("no str")

    def __repr__(self) -> str:
        raise RuntimeError("no repr")


def test_serialize_keeps_json_and_writes_str_of_what_json_cannot_hold() -> None:
    calls = CallRecorder(serialize=True)
    handler = calls.wrap(lambda *a, **k: {"ok": True, "n": len(a)}, name="h")
    handler(1, "x", user={"id": 3}, obj=Opaque())
    [record] = calls.history()
    assert calls.capture == "json"
    assert json.loads(record.args or "") == {
        "args": [1, "x"],
        "kwargs": {"user": {"id": 3}, "obj": "<opaque 7>"},
    }
    assert json.loads(record.result or "") == {"ok": True, "n": 2}


def test_serialize_with_a_function_and_values_it_refuses() -> None:
    def serializer(value: object) -> object:
        if isinstance(value, Opaque):
            return {"opaque": 7}
        raise TypeError(f"cannot serialise {type(value).__name__}")

    calls = CallRecorder(serialize=serializer)
    calls.wrap(lambda **k: None, name="h")(a=Opaque(), b=Broken(), c={1, 2})
    [record] = calls.history()
    doc = json.loads(record.args or "")
    assert doc["kwargs"] == {
        "a": {"opaque": 7},
        "b": "<unrepresentable Broken: TypeError>",
        "c": "<unrepresentable set: TypeError>",
    }
    assert calls.format_failures == 2


def test_without_serialize_unserialisable_kwargs_are_reprs() -> None:
    calls = CallRecorder(capture="repr")
    calls.wrap(lambda **k: None, name="h")(a=Opaque(), b=Broken())
    [record] = calls.history()
    assert record.args is not None
    assert record.args.startswith("a=<tests.unit.calls.test_calls_seed_names.Opaque object at")
    # reprlib stands in for a __repr__ that raises.
    assert ", b=<Broken instance at 0x" in record.args


def test_serialized_values_stay_bounded_and_valid_json() -> None:
    calls = CallRecorder(serialize=True, max_text=60)
    calls.wrap(lambda *a, **k: "r" * 500, name="h")(list(range(1000)), *range(100), k="v" * 500)
    [record] = calls.history()
    doc = json.loads(record.args or "")
    first = doc["args"][0]
    assert isinstance(first, str)
    assert first.startswith("[0, 1, 2")
    assert len(first) == 60
    assert doc["args"][-1] == MORE  # the arguments past the limit are left out, marked
    assert len(doc["args"]) < 30
    assert len(json.loads(record.result or "")) == 60


def test_serialize_and_capture_do_not_go_together() -> None:
    with pytest.raises(ValueError, match="not both"):
        CallRecorder(capture="repr", serialize=True)
    with pytest.raises(TypeError, match="True or a function"):
        CallRecorder(serialize="yes")  # type: ignore[arg-type]


def test_a_message_that_is_not_utf8_is_kept_escaped() -> None:
    calls = CallRecorder(capture="repr")
    name = os.fsdecode(b"caf\xe9.txt")  # an undecodable file name: a lone surrogate

    @calls(name="open")
    def open_file(path: str) -> None:
        raise FileNotFoundError(f"no such file: {path}")

    with pytest.raises(FileNotFoundError):
        open_file(name)
    [record] = calls.history()
    assert record.error_message == "no such file: caf\\udce9.txt"
    assert record.error_message.encode("utf-8")
    assert record.args == "'caf\\udce9.txt'"


def test_a_huge_message_is_cut() -> None:
    calls = CallRecorder(max_text=100)

    @calls(name="h")
    def h() -> None:
        raise ValueError("x" * 1_000_000)

    with pytest.raises(ValueError, match=r"^x+$"):
        h()
    [record] = calls.history()
    assert record.error_message == "x" * 99 + "…"
