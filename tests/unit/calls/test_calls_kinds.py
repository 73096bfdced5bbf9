"""Every kind of callable is recorded, and still behaves exactly as before."""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import AsyncIterator, Iterator

import pytest
from tests.unit.calls.call_doubles import WALL_START_NS, ManualClock

from collectbus.calls import CallRecorder
from collectbus.calls.codegen import WRAPPER_FILENAME


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def calls(clock: ManualClock) -> CallRecorder:
    return CallRecorder(clock=clock, host="h")


def test_sync_function(calls: CallRecorder, clock: ManualClock) -> None:
    @calls
    def add(a: int, b: int = 2, *, scale: int = 1) -> int:
        clock.advance(500)
        return (a + b) * scale

    assert add(1) == 3
    assert add(1, 5, scale=10) == 60
    [first, second] = calls.history()
    assert (first.handler, first.elapsed_ns, first.ok) == ("test_sync_function.add", 500, True)
    assert first.qualname.endswith("test_sync_function.<locals>.add")
    assert first.started_ns == WALL_START_NS
    assert second.started_ns == WALL_START_NS + 500
    assert first.host == "h"


def test_plain_functions_get_a_compiled_wrapper_that_looks_like_them(
    calls: CallRecorder,
) -> None:
    def handler(request: str, /, retries: int = 3, *rest: object, key: str, **extra: object) -> str:
        """Docs."""
        return f"{request}{retries}{rest}{key}{extra}"

    wrapped = calls.wrap(handler)
    assert wrapped.__code__.co_filename == WRAPPER_FILENAME
    assert wrapped("r", 1, 2, key="k", x=1) == handler("r", 1, 2, key="k", x=1)
    assert wrapped("r", key="k") == "r3()k{}"
    assert (wrapped.__name__, wrapped.__doc__) == ("handler", "Docs.")
    assert inspect.signature(wrapped) == inspect.signature(handler)
    assert wrapped.__wrapped__ is handler  # type: ignore[attr-defined]
    with pytest.raises(TypeError, match="handler"):
        wrapped()  # the same error as the function's own
    assert calls.recorded == 2


def test_defaults_are_the_same_objects(calls: CallRecorder) -> None:
    sentinel: list[int] = []

    @calls
    def append(value: int, into: list[int] = sentinel) -> list[int]:
        into.append(value)
        return into

    assert append(1) is sentinel
    assert sentinel == [1]


def test_methods_and_bound_methods(calls: CallRecorder) -> None:
    class Api:
        def __init__(self) -> None:
            self.n = 0

        @calls
        def bump(self, by: int = 1) -> int:
            self.n += by
            return self.n

    api = Api()
    assert api.bump() == 1
    bound = calls.wrap(Api().bump, name="other.bump")
    assert bound(5) == 5
    # The bound method is itself recorded, and ends first.
    assert [r.handler for r in calls.history()] == [
        "test_methods_and_bound_methods.Api.bump",
        "test_methods_and_bound_methods.Api.bump",
        "other.bump",
    ]


def test_callables_without_a_plain_signature(calls: CallRecorder) -> None:
    class Doubler:
        def __call__(self, x: int) -> int:
            return 2 * x

    partial = calls.wrap(functools.partial(pow, 2), name="pow2")
    builtin = calls.wrap(len)
    instance = calls.wrap(Doubler())
    assert (partial(10), builtin("abc"), instance(4)) == (1024, 3, 8)
    assert calls.handlers == ["pow2", "len", "test_callables_without_a_plain_signature.Doubler"]
    assert calls.recorded == 3


def test_coroutine(calls: CallRecorder, clock: ManualClock) -> None:
    @calls
    async def fetch(x: int) -> int:
        clock.advance(100)
        await asyncio.sleep(0)
        clock.advance(200)
        return x + 1

    assert inspect.iscoroutinefunction(fetch)
    assert asyncio.run(fetch(1)) == 2
    [record] = calls.history()
    assert (record.handler, record.elapsed_ns, record.ok) == ("test_coroutine.fetch", 300, True)


def test_generator_is_timed_until_exhausted(calls: CallRecorder, clock: ManualClock) -> None:
    @calls
    def count(n: int) -> Iterator[int]:
        for i in range(n):
            clock.advance(10)
            yield i
        return None

    gen = count(3)
    assert inspect.isgeneratorfunction(count)
    assert calls.recorded == 0  # nothing ran yet
    assert next(gen) == 0
    clock.advance(1000)  # the consumer's own time is part of the generator's life
    assert list(gen) == [1, 2]
    [record] = calls.history()
    assert record.elapsed_ns == 1030


def test_generator_send_throw_and_return_value_pass_through(calls: CallRecorder) -> None:
    @calls
    def echo() -> Iterator[object]:
        got: object = None
        try:
            while True:
                got = yield got
        except KeyError:
            yield "caught"
        return "end"

    gen = echo()
    next(gen)
    assert gen.send(5) == 5
    assert gen.throw(KeyError("k")) == "caught"
    with pytest.raises(StopIteration) as stop:
        next(gen)
    assert stop.value.value == "end"
    assert calls.history()[0].ok


def test_generator_closed_early_is_recorded_once_as_ok(
    calls: CallRecorder, clock: ManualClock
) -> None:
    closed: list[bool] = []

    @calls
    def forever() -> Iterator[int]:
        try:
            while True:
                clock.advance(1)
                yield 1
        finally:
            closed.append(True)

    gen = forever()
    next(gen)
    next(gen)
    gen.close()
    assert closed == [True]
    [record] = calls.history()
    assert (record.ok, record.elapsed_ns) == (True, 2)


def test_async_generator(calls: CallRecorder, clock: ManualClock) -> None:
    @calls
    async def ticks(n: int) -> AsyncIterator[int]:
        for i in range(n):
            clock.advance(7)
            await asyncio.sleep(0)
            yield i

    async def consume() -> list[int]:
        return [i async for i in ticks(3)]

    assert inspect.isasyncgenfunction(ticks)
    assert asyncio.run(consume()) == [0, 1, 2]
    [record] = calls.history()
    assert (record.handler, record.elapsed_ns, record.ok) == (
        "test_async_generator.ticks",
        21,
        True,
    )


def test_async_generator_asend_athrow_aclose_pass_through(calls: CallRecorder) -> None:
    cleaned: list[str] = []

    @calls
    async def echo() -> AsyncIterator[object]:
        got: object = None
        try:
            while True:
                try:
                    got = yield got
                except KeyError:
                    got = "caught"
        finally:
            cleaned.append("done")

    async def drive() -> list[object]:
        agen = echo()
        seen = [await agen.__anext__(), await agen.asend(1), await agen.athrow(KeyError("k"))]
        await agen.aclose()
        return seen

    assert asyncio.run(drive()) == [None, 1, "caught"]
    assert cleaned == ["done"]
    [record] = calls.history()
    assert record.ok


def test_async_generator_error(calls: CallRecorder) -> None:
    error = RuntimeError("midway")

    @calls
    async def broken() -> AsyncIterator[int]:
        yield 1
        raise error

    async def consume() -> list[int]:
        return [i async for i in broken()]

    with pytest.raises(RuntimeError) as info:
        asyncio.run(consume())
    assert info.value is error
    [record] = calls.history()
    assert (record.error_type, record.error_message) == ("RuntimeError", "midway")


def test_generator_error(calls: CallRecorder) -> None:
    @calls
    def broken() -> Iterator[int]:
        yield 1
        raise ValueError("no more")

    with pytest.raises(ValueError, match="no more"):
        list(broken())
    assert calls.errors()[0].error_type == "ValueError"


def test_static_and_class_methods(calls: CallRecorder) -> None:
    class Tools:
        @calls
        @staticmethod
        def double(x: int) -> int:
            return 2 * x

        @calls
        @classmethod
        def name(cls) -> str:
            return cls.__name__

    assert (Tools.double(2), Tools().double(3), Tools.name()) == (4, 6, "Tools")
    assert calls.handlers == [
        "test_static_and_class_methods.Tools.double",
        "test_static_and_class_methods.Tools.name",
    ]
    assert calls.recorded == 3
