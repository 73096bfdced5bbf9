"""Exceptions reach the caller unchanged; the collector's own failures never do."""

from __future__ import annotations

import asyncio
import sys
import traceback
import weakref
from collections.abc import Callable, Iterator

import pytest
from tests.unit.calls.call_doubles import ManualClock

from collectbus.calls import CallRecorder


class Boom(Exception):
    pass


def _raising_frames(exc: BaseException) -> list[str]:
    return [frame.name for frame in traceback.extract_tb(exc.__traceback__)]


def deep_failure() -> None:
    raise Boom("deep")


def middle() -> None:
    deep_failure()


@pytest.mark.parametrize("capture", ["none", "summary", "repr"])
def test_the_same_exception_object_with_its_traceback(capture: str) -> None:
    calls = CallRecorder(capture=capture)  # type: ignore[arg-type]
    raised: list[BaseException] = []

    @calls
    def handler(x: int) -> None:
        try:
            middle()
        except Boom as err:
            raised.append(err)
            raise

    with pytest.raises(Boom) as info:
        handler(1)
    assert info.value is raised[0]
    frames = _raising_frames(info.value)
    assert frames[-3:] == ["handler", "middle", "deep_failure"]
    [record] = calls.history()
    assert record.error_type == f"{__name__}.Boom"
    assert record.error_message == "deep"
    assert record.traceback is not None
    assert record.traceback.splitlines()[-1].endswith("in deep_failure")
    assert "collectbus call wrapper" not in record.traceback  # the wrapper's frames are left out


def test_exceptions_of_each_kind_are_reraised_unchanged() -> None:
    calls = CallRecorder()
    error = Boom("x")

    @calls
    async def co() -> None:
        raise error

    @calls
    def gen() -> Iterator[int]:
        raise error
        yield 1

    with pytest.raises(Boom) as info:
        asyncio.run(co())
    assert info.value is error
    with pytest.raises(Boom) as info:
        next(gen())
    assert info.value is error
    assert [r.error_type for r in calls.errors()] == [f"{__name__}.Boom"] * 2


def test_base_exceptions_are_recorded_and_reraised() -> None:
    calls = CallRecorder()

    @calls
    def interrupted() -> None:
        raise KeyboardInterrupt

    @calls
    def leaves() -> None:
        sys.exit(3)

    with pytest.raises(KeyboardInterrupt):
        interrupted()
    with pytest.raises(SystemExit) as info:
        leaves()
    assert info.value.code == 3
    assert [r.error_type for r in calls.errors()] == ["KeyboardInterrupt", "SystemExit"]


class BadRepr:
    def __repr__(self) -> str:
        raise RuntimeError("repr failed")


class BadStr(Exception):
    def __str__(self) -> str:
        raise RuntimeError("str failed")


def test_formatting_failures_are_counted_not_raised() -> None:
    calls = CallRecorder(capture="repr")

    @calls
    def takes(value: object) -> object:
        return value

    @calls
    def fails() -> None:
        raise BadStr

    assert isinstance(takes(BadRepr()), BadRepr)
    with pytest.raises(BadStr):
        fails()
    ok, failed = calls.history()
    # reprlib stands in for a failing __repr__ by itself.
    assert ok.args is not None
    assert ok.args.startswith("<BadRepr instance at ")
    assert failed.error_message == "<unprintable BadStr: RuntimeError>"
    assert calls.format_failures == 1


def test_captured_values_are_text_and_hold_no_reference() -> None:
    calls = CallRecorder(capture="repr", max_text=40)

    class Payload:
        def __repr__(self) -> str:
            return "Payload()"

    @calls
    def echo(payload: Payload, items: list[int], text: str = "") -> Payload:
        return payload

    payload = Payload()
    ref = weakref.ref(payload)
    echo(payload, list(range(1000)), text="x" * 500)
    del payload
    assert ref() is None  # neither the record nor the history keeps it alive
    [record] = calls.history()
    assert record.args is not None
    assert record.args.startswith("Payload(), [0, 1, 2, 3, 4, 5, ...]")
    assert len(record.args) == 40
    assert record.args.endswith("…")
    assert record.result == "Payload()"


def test_summary_capture_gives_types_and_sizes() -> None:
    calls = CallRecorder(capture="summary")

    @calls
    def handler(*args: object, **kwargs: object) -> dict[str, int]:
        return {"a": 1}

    handler(1, "abc", [1, 2], user={"x": 1}, flag=None)
    [record] = calls.history()
    assert record.args == "int, str[3], list[2], user=dict[1], flag=NoneType"
    assert record.result == "dict[1]"


@pytest.mark.parametrize("nested", ["all", "outermost"])
@pytest.mark.parametrize("capture", ["none", "repr"])
def test_recursion_to_the_limit_still_raises_the_callers_error(nested: str, capture: str) -> None:
    calls = CallRecorder(nested=nested, capture=capture)  # type: ignore[arg-type]

    @calls
    def down(n: int) -> int:
        return down(n + 1)

    with pytest.raises(RecursionError):
        down(0)
    # Every call was recorded, or counted as lost when recording itself hit the limit.
    assert calls.recorded + calls.lost >= 1
    assert all(r.error_type == "RecursionError" for r in calls.history())


def test_a_lambda_is_recorded_under_the_name_given() -> None:
    calls = CallRecorder(clock=ManualClock())
    handler: Callable[[], int] = calls.wrap(lambda: 1, name="one")
    assert handler() == 1
    assert [r.handler for r in calls.history()] == ["one"]
