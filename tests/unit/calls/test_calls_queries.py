"""history(), slowest(), fastest(), slower_than(), errors(), stats(), exports."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from tests.unit.calls.call_doubles import WALL_START_NS, ManualClock

from collectbus.calls import CallRecorder
from collectbus.calls.export import read_export
from collectbus.errors import ParseError

# (handler, elapsed ns, fails)
SCRIPT = [("a", 30, False), ("b", 10, True), ("a", 50, False), ("b", 20, False), ("a", 40, True)]


@pytest.fixture
def calls() -> CallRecorder:
    clock = ManualClock()
    collector = CallRecorder(clock=clock, capture="repr")

    def make(name: str) -> object:
        @collector(name=name)
        def handler(elapsed: int, fails: bool) -> int:
            clock.advance(elapsed)
            if fails:
                raise ValueError(f"{name} failed after {elapsed}")
            return elapsed

        return handler

    handlers = {"a": make("a"), "b": make("b")}
    for name, elapsed, fails in SCRIPT:
        with contextlib.suppress(ValueError):
            handlers[name](elapsed, fails)  # type: ignore[operator]
        clock.advance(1000)  # time between calls
    return collector


def _elapsed(records: list) -> list[int]:  # type: ignore[type-arg]
    return [r.elapsed_ns for r in records]


def test_history_filters_and_limits(calls: CallRecorder) -> None:
    assert _elapsed(calls.history()) == [30, 10, 50, 20, 40]
    assert _elapsed(calls.history(last=2)) == [20, 40]
    assert _elapsed(calls.history(first=2)) == [30, 10]
    assert _elapsed(calls.history(last=0)) == []
    assert _elapsed(calls.history(handler="a")) == [30, 50, 40]
    assert _elapsed(calls.history(handler="a", errors=False)) == [30, 50]
    assert _elapsed(calls.history(errors=True, last=1)) == [40]
    assert calls.history(handler="nobody") == []
    # Seconds as a float are precise to about 0.2 µs here; calls are 1 µs apart.
    third_start = calls.history()[2].started_ns
    assert _elapsed(calls.history(since=(third_start - 500) / 1e9)) == [50, 20, 40]
    with pytest.raises(ValueError, match="first or last"):
        calls.history(first=1, last=1)


def test_wall_times_and_captured_values(calls: CallRecorder) -> None:
    first, second = calls.history(first=2)
    assert first.started_ns == WALL_START_NS
    assert second.started_ns == WALL_START_NS + 30 + 1000
    assert (first.args, first.result) == ("30, False", "30")
    assert (second.error_type, second.error_message) == ("ValueError", "b failed after 10")
    assert second.args == "10, True"
    assert second.result is None


def test_slowest_fastest_slower_than_errors(calls: CallRecorder) -> None:
    assert _elapsed(calls.slowest(2)) == [50, 40]
    assert _elapsed(calls.fastest(2)) == [10, 20]
    assert _elapsed(calls.slowest(10, handler="b")) == [20, 10]
    assert _elapsed(calls.slower_than(30e-9)) == [30, 50, 40]
    assert _elapsed(calls.slower_than(30e-9, handler="b")) == []
    assert [r.error_message for r in calls.errors()] == [
        "b failed after 10",
        "a failed after 40",
    ]
    assert _elapsed(calls.errors(handler="a")) == [40]


def test_stats(calls: CallRecorder) -> None:
    every = calls.stats()
    assert list(every) == ["a", "b"]
    a = every["a"]
    assert (a.calls, a.errors, a.held, a.slow) == (3, 1, 3, 0)
    assert a.total_s == pytest.approx(120e-9)
    assert a.avg_s == pytest.approx(40e-9)
    assert a.min_s == pytest.approx(30e-9)
    assert a.max_s == pytest.approx(50e-9)
    assert a.p50_s == pytest.approx(40e-9)
    assert a.p95_s == pytest.approx(49e-9)
    assert a.last_error == "ValueError"
    assert a.last_elapsed_s == pytest.approx(40e-9)
    assert a.last_started_ns == calls.history()[-1].started_ns
    assert calls.stats("b") == every["b"]
    nobody = calls.stats("nobody")
    assert (nobody.calls, nobody.held, nobody.p99_s, nobody.avg_s) == (0, 0, None, None)


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_export_reads_back(calls: CallRecorder, tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"calls.{fmt}"
    assert calls.export(path, format=fmt) == 5  # type: ignore[arg-type]
    assert read_export(path) == calls.history()
    assert not list(tmp_path.glob(".*tmp"))  # written through a temporary file, then renamed
    if fmt == "json":
        doc = json.loads(path.read_text())
        assert doc["stats"]["a"]["calls"] == 3
        assert (doc["held"], doc["recorded"], doc["evicted"]) == (5, 5, 0)
    else:
        assert len(path.read_text().splitlines()) == 5


def test_to_dict_is_plain_json(calls: CallRecorder) -> None:
    doc = calls.to_dict()
    assert json.loads(json.dumps(doc)) == doc
    assert [r["elapsed_ns"] for r in doc["records"]] == [30, 10, 50, 20, 40]
    assert doc["records"][0]["type"] == "CallRecord"


def test_an_empty_collector_answers_every_query(tmp_path: Path) -> None:
    calls = CallRecorder()
    assert calls.history() == calls.slowest() == calls.errors() == []
    assert calls.stats() == {}
    assert calls.export(tmp_path / "empty.jsonl", format="jsonl") == 0
    assert read_export(tmp_path / "empty.jsonl") == []


def test_reading_a_foreign_file_is_a_parse_error(tmp_path: Path) -> None:
    path = tmp_path / "other.jsonl"
    path.write_text('{"type": "CollectionEvent", "source": "s", "host": "h", '
                    '"started_ns": 1, "duration_ns": 1, "status": "ok"}\n')  # fmt: skip
    with pytest.raises(ParseError, match="not calls"):
        read_export(path)
    path.write_text("not json\n")
    with pytest.raises(ParseError):
        read_export(path)
    with pytest.raises(ValueError, match="json or jsonl"):
        CallRecorder().export(tmp_path / "x", format="xml")  # type: ignore[arg-type]
