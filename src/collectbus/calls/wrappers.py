"""Wrappers for every kind of callable: sync, coroutine, generator, async generator.

Plain functions in the budgeted configurations get a compiled wrapper
(:mod:`collectbus.calls.codegen`); everything else gets one of the general
wrappers here, which support argument capture, ``nested="outermost"`` and
sampling.

Rules every wrapper keeps:

- the wrapped call's result or exception reaches the caller unchanged: an
  exception is re-raised with a bare ``raise``, the same object with its
  traceback;
- a failure of the recording itself never reaches the caller: formatting
  failures are caught where they happen (:mod:`collectbus.calls.capture`),
  and a recording that cannot even start (the recursion limit) is counted as
  lost;
- a generator is timed from its first step until it is exhausted or closed;
  a coroutine from its first step until it returns or raises. The kind is
  what :mod:`inspect` says of the callable: a plain function that returns a
  coroutine or an iterator is timed until it returns it.

``nested="outermost"``: a call is not recorded while another recorded call
of the same collector runs in the same thread or asyncio task (a
``ContextVar``, so tasks interleaving on one thread do not mix). Generators
are checked when they start, but do not mark their own body as running: a
generator's body runs inside whoever iterates it, so a mark would leak out.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncGenerator, Callable, Generator
from typing import Any

from collectbus.calls.codegen import WRAPPER_FILENAME, compile_wrapper
from collectbus.calls.handler import Handler
from collectbus.calls.settings import Settings


def is_wrapper_frame(filename: str) -> bool:
    """Whether a traceback frame belongs to a wrapper, to leave it out of records."""
    return filename in (WRAPPER_FILENAME, __file__)


def wrap(fn: Callable[..., Any], handler: Handler, settings: Settings) -> Callable[..., Any]:
    """A recording wrapper of ``fn`` that looks like ``fn`` (name, docs, signature)."""
    wrapper: Callable[..., Any] | None
    if inspect.isasyncgenfunction(fn):
        wrapper = _async_generator(fn, handler, settings)
    elif inspect.iscoroutinefunction(fn):
        wrapper = _coroutine(fn, handler, settings)
    elif inspect.isgeneratorfunction(fn):
        wrapper = _generator(fn, handler, settings)
    else:
        wrapper = compile_wrapper(fn, handler, settings) or _sync(fn, handler, settings)
    functools.update_wrapper(wrapper, fn)
    return wrapper


def _sampled(s: Settings) -> bool:
    return s.sample >= 1.0 or s.random() < s.sample


def _sync(fn: Callable[..., Any], h: Handler, s: Settings) -> Callable[..., Any]:
    switch, clock, active, lost = s.switch, s.clock, s.active, s.lost

    def timed(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        sampled = _sampled(s)
        if not sampled and not s.watch_sampled_out:
            return fn(*args, **kwargs)
        t0 = clock()
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            if sampled or s.errors_always:
                try:
                    h.fail(t0, clock(), exc, args, kwargs)
                except RecursionError:
                    lost(1)
            raise
        t1 = clock()
        if sampled or (s.slow_ns is not None and t1 - t0 >= s.slow_ns):
            try:
                h.ok(t0, t1, args, kwargs, result)
            except RecursionError:
                lost(1)
        return result

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not switch.on:
            return fn(*args, **kwargs)
        if active is None:
            return timed(args, kwargs)
        if active.get():
            return fn(*args, **kwargs)
        token = active.set(True)
        try:
            return timed(args, kwargs)
        finally:
            active.reset(token)

    return wrapper


def _coroutine(fn: Callable[..., Any], h: Handler, s: Settings) -> Callable[..., Any]:
    switch, clock, active, lost = s.switch, s.clock, s.active, s.lost

    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not switch.on or (active is not None and active.get()):
            return await fn(*args, **kwargs)
        token = active.set(True) if active is not None else None
        try:
            sampled = _sampled(s)
            if not sampled and not s.watch_sampled_out:
                return await fn(*args, **kwargs)
            t0 = clock()
            try:
                result = await fn(*args, **kwargs)
            except BaseException as exc:
                if sampled or s.errors_always:
                    try:
                        h.fail(t0, clock(), exc, args, kwargs)
                    except RecursionError:
                        lost(1)
                raise
            t1 = clock()
            if sampled or (s.slow_ns is not None and t1 - t0 >= s.slow_ns):
                try:
                    h.ok(t0, t1, args, kwargs, result)
                except RecursionError:
                    lost(1)
            return result
        finally:
            if token is not None and active is not None:
                active.reset(token)

    return wrapper


def _generator(fn: Callable[..., Any], h: Handler, s: Settings) -> Callable[..., Any]:
    switch, clock, active, lost = s.switch, s.clock, s.active, s.lost

    def wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        if not switch.on or (active is not None and active.get()):
            return (yield from fn(*args, **kwargs))
        sampled = _sampled(s)
        if not sampled and not s.watch_sampled_out:
            return (yield from fn(*args, **kwargs))
        t0 = clock()
        try:
            result = yield from fn(*args, **kwargs)
        except GeneratorExit:
            # Closed before the end: a normal way to stop a generator, not an error.
            t1 = clock()
            if sampled or (s.slow_ns is not None and t1 - t0 >= s.slow_ns):
                try:
                    h.ok(t0, t1, args, kwargs, None)
                except RecursionError:
                    lost(1)
            raise
        except BaseException as exc:
            if sampled or s.errors_always:
                try:
                    h.fail(t0, clock(), exc, args, kwargs)
                except RecursionError:
                    lost(1)
            raise
        t1 = clock()
        if sampled or (s.slow_ns is not None and t1 - t0 >= s.slow_ns):
            try:
                h.ok(t0, t1, args, kwargs, result)
            except RecursionError:
                lost(1)
        return result

    return wrapper


def _async_generator(fn: Callable[..., Any], h: Handler, s: Settings) -> Callable[..., Any]:
    switch, clock, active, lost = s.switch, s.clock, s.active, s.lost

    async def wrapper(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        agen = fn(*args, **kwargs)
        record = switch.on and not (active is not None and active.get())
        sampled = record and _sampled(s)
        t0 = clock()
        try:
            # ``yield from`` by hand (async generators have none): sent values,
            # thrown exceptions and aclose() all reach the wrapped generator.
            item = await agen.__anext__()
            while True:
                try:
                    sent = yield item
                except GeneratorExit:
                    await agen.aclose()
                    raise
                except BaseException as thrown:  # noqa: BLE001 - handed on to the generator
                    item = await agen.athrow(thrown)
                else:
                    item = await agen.asend(sent)
        except (StopAsyncIteration, GeneratorExit) as end:
            t1 = clock()
            slow = record and s.slow_ns is not None and t1 - t0 >= s.slow_ns
            if sampled or slow:
                try:
                    h.ok(t0, t1, args, kwargs, None)
                except RecursionError:
                    lost(1)
            if isinstance(end, GeneratorExit):
                raise
        except BaseException as exc:
            if sampled or (record and s.errors_always):
                try:
                    h.fail(t0, clock(), exc, args, kwargs)
                except RecursionError:
                    lost(1)
            raise

    return wrapper
