"""Tables drawn without rich are exactly what rich draws, and rich still
draws what the plain drawing cannot."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console
from rich.table import Table
from rich.text import Text

from collectbus.cli.output import render
from collectbus.cli.table import console_width, plain_table

# Printable Latin text, with the characters a markup parser would care about.
_LATIN = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x2FF, blacklist_categories=("Cc",)),
    max_size=12,
)


def _rich(
    cells: list[list[str]],
    headers: list[str],
    right: list[bool],
    title: str | None,
    width: int,
    styled: bool,
) -> str:
    """What output.render's rich table prints at ``width``, styled or not."""
    out = io.StringIO()
    console = Console(
        file=out,
        width=width,
        force_terminal=styled,
        color_system="standard" if styled else None,
        legacy_windows=False,
    )
    table = Table(title=title, show_edge=False, header_style="bold")
    for name, is_right in zip(headers, right, strict=True):
        table.add_column(name, justify="right" if is_right else "left")
    for row in cells:
        table.add_row(*(Text(text) for text in row))
    console.print(table)
    return out.getvalue()


@st.composite
def _tables(draw: st.DrawFn) -> tuple[list[list[str]], list[str], list[bool], str | None]:
    n = draw(st.integers(1, 6))
    headers = draw(st.lists(_LATIN.filter(bool), min_size=n, max_size=n))
    right = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    rows = draw(st.lists(st.lists(_LATIN, min_size=n, max_size=n), max_size=8))
    title = draw(st.none() | _LATIN.filter(lambda t: t.strip() == t and bool(t)))
    return rows, headers, right, title


@settings(max_examples=300, deadline=None)
@given(table=_tables(), width=st.integers(10, 120), styled=st.booleans())
def test_plain_table_is_what_rich_prints(
    table: tuple[list[list[str]], list[str], list[bool], str | None], width: int, styled: bool
) -> None:
    cells, headers, right, title = table
    plain = plain_table(cells, headers, right, title=title, width=width, styled=styled)
    if plain is not None:  # None: too wide, or a blank column; rich draws those
        assert plain == _rich(cells, headers, right, title, width, styled)


def test_plain_table_declines_what_it_cannot_draw() -> None:
    def draw(cells: list[list[str]], width: int = 80) -> str | None:
        return plain_table(cells, ["a", "b"], [False, True], title=None, width=width, styled=False)

    assert draw([["x", "1"]]) is not None
    assert draw([["漢字", "1"]]) is None  # two columns wide each
    assert draw([["two\nlines", "1"]]) is None
    assert draw([["tab\there", "1"]]) is None
    assert draw([["x" * 80, "1"]]) is None  # wider than the console
    assert draw([["", ""]]) is not None  # the headers give the columns their width
    # rich reads titles as markup: those that could hold some are left to it.
    assert plain_table([], ["a"], [False], title="123[].pbs", width=80, styled=False) is None


@pytest.mark.parametrize(
    ("env", "tty"),
    [
        ({}, False),
        ({}, True),
        ({"COLUMNS": "97"}, True),
        ({"COLUMNS": "97"}, False),
        ({"TERM": "dumb"}, True),
        ({"TERM": "unknown", "COLUMNS": "150"}, True),
        ({"FORCE_COLOR": "1"}, False),
        ({"FORCE_COLOR": ""}, True),
        ({"FORCE_COLOR": "1", "TERM": "dumb"}, False),
        ({"TTY_COMPATIBLE": "0"}, True),
        ({"TTY_COMPATIBLE": "1"}, False),
        ({"NO_COLOR": "1"}, True),
    ],
)
def test_console_width_follows_rich(
    env: dict[str, str], tty: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Width and styling as rich's console decides them, for the environments that matter."""
    for name in ("COLUMNS", "TERM", "FORCE_COLOR", "TTY_COMPATIBLE", "NO_COLOR", "LINES"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    class Stream(io.StringIO):
        def isatty(self) -> bool:
            return tty

    stream = Stream()
    console = Console(file=stream, width=None if tty else 200)
    width, styled = console_width(stream) or (0, False)
    assert width == console.width
    assert styled == (console.color_system is not None)


def test_render_draws_the_same_table_with_and_without_rich(
    capsys: pytest.CaptureFixture[str],
) -> None:
    rows = [
        {"job_id": 7, "user": "ana", "cpus": 1024, "load": 2.5, "note": None},
        {"job_id": 12345, "user": "bö", "cpus": 8, "load": float("nan"), "note": "[b]x[/b] :+1:"},
    ]
    render(rows, "table", title="jobs", headers={"cpus": "CPUs"})
    plain = capsys.readouterr().out
    out = io.StringIO()
    render(
        rows, "table", title="jobs", headers={"cpus": "CPUs"}, console=Console(file=out, width=200)
    )
    assert plain == out.getvalue()
    assert "[b]x[/b] :+1:" in plain  # cells are text, never markup or emoji codes
    assert "1,024" in plain
    assert "12345" in plain
