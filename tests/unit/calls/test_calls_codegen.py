"""Compiled wrappers bind arguments exactly as the function they wrap."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collectbus.calls import CallRecorder
from collectbus.calls.codegen import WRAPPER_FILENAME, mirror_signature


def pos_only(a, b=2, /, c=3):  # type: ignore[no-untyped-def]
    return (a, b, c)


def kw_only(a, *, b, c=3):  # type: ignore[no-untyped-def]
    return (a, b, c)


def star(a, *args, b=1, **kwargs):  # type: ignore[no-untyped-def]
    return (a, args, b, kwargs)


def only_star(*args, **kwargs):  # type: ignore[no-untyped-def]
    return (args, kwargs)


def nothing():  # type: ignore[no-untyped-def]
    return ()


FUNCTIONS: list[Callable[..., Any]] = [pos_only, kw_only, star, only_star, nothing]

arguments = st.tuples(
    st.lists(st.integers(0, 9), max_size=4).map(tuple),
    st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), st.integers(0, 9), max_size=3),
)


def _outcome(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> object:
    try:
        return ("ok", fn(*args, **kwargs))
    except TypeError:
        return "TypeError"


@pytest.mark.parametrize("fn", FUNCTIONS, ids=lambda f: f.__name__)
@given(arguments)
def test_same_result_or_same_refusal(
    fn: Callable[..., Any], call: tuple[tuple[Any, ...], dict[str, Any]]
) -> None:
    wrapped = CallRecorder().wrap(fn)
    assert wrapped.__code__.co_filename == WRAPPER_FILENAME
    args, kwargs = call
    assert _outcome(wrapped, args, kwargs) == _outcome(fn, args, kwargs)


def test_what_is_not_compiled() -> None:
    def own_signature(x):  # type: ignore[no-untyped-def]
        return x

    own_signature.__signature__ = inspect.Signature()  # type: ignore[attr-defined]

    def clash(_cb_fn):  # type: ignore[no-untyped-def]
        return _cb_fn

    for fn in (own_signature, clash, len, print):
        assert mirror_signature(fn) is None
    wrapped = CallRecorder().wrap(clash)
    assert wrapped(5) == 5  # the general wrapper


def test_sampled_wrappers_are_compiled_too() -> None:
    for kwargs in ({"sample": 0.5}, {"sample": 0.5, "slow_threshold": 1.0}):
        wrapped = CallRecorder(**kwargs).wrap(star)  # type: ignore[arg-type]
        assert wrapped.__code__.co_filename == WRAPPER_FILENAME
        assert wrapped(1, 2, b=3, z=4) == (1, (2,), 3, {"z": 4})
