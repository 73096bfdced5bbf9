from __future__ import annotations

import pytest

from collectbus.cli.usage import one_line


@pytest.mark.parametrize(
    ("message", "line"),
    [
        ("Got unexpected extra argument (x).", "got unexpected extra argument (x)"),
        ("Choose from:\n\ttable,\n\tjson,\n\tcsv", "choose from: table, json, csv"),
        ("PBS refused the job.", "PBS refused the job"),
        ("--stats and --slowest do not go together", "--stats and --slowest do not go together"),
        ("I/O error.", "I/O error"),
        ("", ""),
    ],
)
def test_one_line(message: str, line: str) -> None:
    assert one_line(message) == line
