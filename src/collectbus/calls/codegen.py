"""Plain function wrappers with the wrapped function's own signature.

Why generate code: a wrapper written ``def wrapper(*args, **kwargs)`` packs
every call's arguments into a tuple and a dict and unpacks them again. That
cost 65-80 ns per call on the development machines, a quarter of the
recording budget (bench/calls_overhead.py: <= 300 ns net). A wrapper compiled with the
function's own parameters (``def handler(self, request):``) passes them on as
plain locals. The same technique is used by :mod:`dataclasses` and attrs.

Only the configurations the budget covers are compiled: no argument capture
and every call recorded (``nested="all"``), with or without sampling. The
recording is inlined in the generated body; everything rarer (a failed call,
a slow call that sampling skipped) calls :class:`~collectbus.calls.handler.Handler`.

A function is compiled only when its signature can be mirrored exactly: a
plain Python function or bound method, without a ``__signature__`` of its own.
Defaults are passed on as the very same objects. Anything else gets the
general wrapper of :mod:`collectbus.calls.wrappers`.
"""

from __future__ import annotations

import inspect
import keyword
import textwrap
from collections.abc import Callable
from typing import Any

from collectbus.calls.handler import Handler
from collectbus.calls.settings import Settings

#: The file name of every generated wrapper, as tracebacks show it.
WRAPPER_FILENAME = "<collectbus call wrapper>"

# Every name the templates use starts with _cb_, so a parameter of the wrapped
# function cannot shadow one (functions with such parameters are not compiled).
_FAIL = """\
try:
    _cb_fail(_cb_t0, _cb_clock(), _cb_exc, None, None)
except _cb_RecursionError:
    _cb_lost(1)"""

_RECORD = """\
_cb_t0 = _cb_clock()
try:
    _cb_result = _cb_fn({call})
except _cb_BaseException as _cb_exc:
{fail}
    raise
_cb_elapsed = _cb_clock() - _cb_t0
try:
    _cb_st = _cb_local.st
except _cb_AttributeError:
    _cb_st = _cb_totals()
_cb_st.calls += 1
_cb_st.ns += _cb_elapsed
_cb_append((_cb_hid, _cb_t0, _cb_elapsed, _cb_st.tid, None))
return _cb_result"""

# A call that sampling skipped, when errors (and maybe slow calls) are kept anyway.
_OUT_ERRORS = """\
_cb_t0 = _cb_clock()
try:
    return _cb_fn({call})
except _cb_BaseException as _cb_exc:
{fail}
    raise"""

_OUT_SLOW = """\
_cb_t0 = _cb_clock()
{call_line}
_cb_t1 = _cb_clock()
if _cb_t1 - _cb_t0 >= _cb_slow_ns:
    try:
        _cb_ok(_cb_t0, _cb_t1, None, None, None)
    except _cb_RecursionError:
        _cb_lost(1)
return _cb_result"""

_CALL_CATCHING = """\
try:
    _cb_result = _cb_fn({call})
except _cb_BaseException as _cb_exc:
{fail}
    raise"""


def _indent(text: str, spaces: int) -> str:
    return textwrap.indent(text, " " * spaces)


def mirror_signature(fn: Callable[..., Any]) -> tuple[str, str, dict[str, object]] | None:
    """(parameter list, call arguments, default values by name) that pass every
    argument of ``fn`` on unchanged, or None when ``fn`` cannot be mirrored."""
    func = fn.__func__ if inspect.ismethod(fn) else fn
    if not inspect.isfunction(func) or "__signature__" in vars(func):
        return None
    try:
        sig = inspect.signature(fn, follow_wrapped=False)
    except (TypeError, ValueError):
        return None
    params: list[str] = []
    call: list[str] = []
    defaults: dict[str, object] = {}
    positional_only = star = False
    for p in sig.parameters.values():
        if p.name.startswith("_cb_"):
            return None
        if positional_only and p.kind is not p.POSITIONAL_ONLY:
            params.append("/")
            positional_only = False
        default = ""
        if p.default is not p.empty:
            key = f"_cb_default_{len(defaults)}"
            defaults[key] = p.default
            default = f"={key}"
        if p.kind is p.POSITIONAL_ONLY:
            positional_only = True
            params.append(p.name + default)
            call.append(p.name)
        elif p.kind is p.POSITIONAL_OR_KEYWORD:
            params.append(p.name + default)
            call.append(p.name)
        elif p.kind is p.VAR_POSITIONAL:
            star = True
            params.append("*" + p.name)
            call.append("*" + p.name)
        elif p.kind is p.KEYWORD_ONLY:
            if not star:
                star = True
                params.append("*")
            params.append(p.name + default)
            call.append(f"{p.name}={p.name}")
        else:
            params.append("**" + p.name)
            call.append("**" + p.name)
    if positional_only:
        params.append("/")
    return ", ".join(params), ", ".join(call), defaults


def wrapper_source(name: str, params: str, call: str, settings: Settings) -> str:
    """The source of a wrapper named ``name``."""
    fail = _indent(_FAIL, 4)
    record = _RECORD.format(call=call, fail=fail)
    passthrough = f"return _cb_fn({call})"
    if settings.sample >= 1.0:
        body = "if _cb_switch.on:\n" + _indent(record, 4) + "\n" + passthrough
    else:
        if settings.slow_ns is not None:
            call_line = (
                _CALL_CATCHING.format(call=call, fail=fail)
                if settings.errors_always
                else f"_cb_result = _cb_fn({call})"
            )
            out = _OUT_SLOW.format(call_line=call_line)
        elif settings.errors_always:
            out = _OUT_ERRORS.format(call=call, fail=fail)
        else:
            out = passthrough
        body = (
            "if _cb_switch.on:\n"
            "    if _cb_random() < _cb_sample:\n"
            + _indent(record, 8)
            + "\n"
            + _indent(out, 4)
            + "\n"
            + passthrough
        )
    return f"def {name}({params}):\n" + _indent(body, 4) + "\n"


def compile_wrapper(
    fn: Callable[..., Any], handler: Handler, settings: Settings
) -> Callable[..., Any] | None:
    """A compiled wrapper of the sync function ``fn``, or None when the general
    wrapper must be used instead."""
    if settings.capture != "none" or settings.active is not None:
        return None
    mirrored = mirror_signature(fn)
    if mirrored is None:
        return None
    params, call, defaults = mirrored
    raw = getattr(fn, "__name__", "")
    name = raw if raw.isidentifier() and not keyword.iskeyword(raw) else "_cb_wrapper"
    if name.startswith("_cb_"):
        name = "_cb_wrapper"
    namespace: dict[str, Any] = {
        "_cb_fn": fn,
        "_cb_switch": settings.switch,
        "_cb_clock": settings.clock,
        "_cb_random": settings.random,
        "_cb_sample": settings.sample,
        "_cb_slow_ns": settings.slow_ns,
        "_cb_append": settings.append,
        "_cb_lost": settings.lost,
        "_cb_hid": handler.hid,
        "_cb_local": handler.local,
        "_cb_totals": handler.thread_totals,
        "_cb_fail": handler.fail,
        "_cb_ok": handler.ok,
        "_cb_BaseException": BaseException,
        "_cb_AttributeError": AttributeError,
        "_cb_RecursionError": RecursionError,
        **defaults,
    }
    source = wrapper_source(name, params, call, settings)
    exec(compile(source, WRAPPER_FILENAME, "exec"), namespace)
    wrapper: Callable[..., Any] = namespace[name]
    qualname = getattr(fn, "__qualname__", name)
    # Error messages for a wrong call (missing argument...) name the function.
    wrapper.__code__ = wrapper.__code__.replace(co_qualname=qualname)
    return wrapper
