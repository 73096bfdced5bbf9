"""Tables drawn as rich draws them, without importing rich when they fit.

Rich takes a tenth of a second to import and to lay out a hundred rows,
as long as the rest of ``collectbus jobs``. Most tables are simple: every
cell one line of plain Latin text, the whole narrower than the console. For
those, :func:`plain_table` writes exactly what rich writes for the table
:func:`collectbus.cli.output.render` builds (no outer edge, a heavy line
under the bold header, the title in italics above; styles only where rich
would style, see :func:`console_width`). Anything else (a cell of another
script or with a line break, a table wider than the console) returns None
and rich draws it. A unit test compares both on many tables.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TextIO

#: rich's ``Console(width=...)`` for output that is not a terminal.
PIPE_WIDTH = 200

_BOLD, _ITALIC, _RESET = "\x1b[1m", "\x1b[3m", "\x1b[0m"


def console_width(stream: TextIO, env: Mapping[str, str] | None = None) -> tuple[int, bool] | None:
    """(width, styled) of rich's console on ``stream`` as ``render`` creates it.

    rich's rules: ``TTY_COMPATIBLE`` (0 or 1), else ``FORCE_COLOR`` (set and
    not empty), else ``isatty()`` make a terminal; ``TERM=dumb`` or
    ``unknown`` makes it 80 columns and unstyled; a terminal is as wide as
    ``COLUMNS`` or the window; output that is not a terminal is 200 columns
    wide. None on Windows, where rich has rules of its own.
    """
    if os.name == "nt":  # pragma: no cover - collectbus runs on Linux
        return None
    env = os.environ if env is None else env
    try:
        tty = stream.isatty()
    except ValueError:
        tty = False
    compatible = env.get("TTY_COMPATIBLE", "")
    if compatible in ("0", "1"):
        terminal = compatible == "1"
    elif "FORCE_COLOR" in env:
        terminal = env["FORCE_COLOR"] != ""
    else:
        terminal = tty
    dumb = terminal and env.get("TERM", "").lower() in ("dumb", "unknown")
    if dumb:
        return 80, False
    if not tty:
        return PIPE_WIDTH, terminal
    width = 0
    for fd in (0, 1, 2):
        try:
            width = os.get_terminal_size(fd).columns
        except (AttributeError, ValueError, OSError):
            continue
        break
    columns = env.get("COLUMNS")
    if columns is not None and columns.isdigit():
        width = int(columns)
    return width or 80, terminal


def _simple(text: str) -> bool:
    """One line of characters one column wide each (printable, below U+0300),
    without the spaces at either end that rich's alignment strips."""
    return text.isprintable() and text == text.strip() and all(ord(ch) < 0x300 for ch in text)


def plain_table(
    cells: Sequence[Sequence[str]],
    headers: Sequence[str],
    right: Sequence[bool],
    *,
    title: str | None,
    width: int,
    styled: bool,
) -> str | None:
    """The table as rich prints it at ``width`` columns, or None if rich must draw it.

    ``cells`` are the rows' texts (shown as they are), ``headers`` the column
    titles, ``right`` which columns are right-aligned.
    """
    # rich reads the headers and the title as markup (and emoji codes): plain if no "[" or ":".
    labels = (*headers, title or "")
    if not headers or not all(_simple(t) and "[" not in t and ":" not in t for t in labels):
        return None
    if not all(_simple(text) for row in cells for text in row):
        return None
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(w, len(text)) for w, text in zip(widths, row, strict=True)]
    total = sum(widths) + 3 * len(widths) - 1
    if min(widths) == 0 or total > width or (title is not None and len(title) > total):
        return None

    def line(texts: Sequence[str], separator: str, style: str = "") -> str:
        parts = []
        for text, size, is_right in zip(texts, widths, right, strict=True):
            aligned = text.rjust(size) if is_right else text.ljust(size)
            if style:
                parts.append(f"{style} {_RESET}{style}{aligned}{_RESET}{style} {_RESET}")
            else:
                parts.append(f" {aligned} ")
        return separator.join(parts)

    out = []
    if title is not None:
        left = (total - len(title)) // 2
        centred = " " * left + title + " " * (total - len(title) - left)
        out.append(f"{_ITALIC}{centred}{_RESET}" if styled else centred)
    out.append(line(headers, "┃", _BOLD if styled else ""))
    out.append("╇".join("━" * (size + 2) for size in widths))
    out.extend(line(row, "│") for row in cells)
    return "\n".join(out) + "\n"
