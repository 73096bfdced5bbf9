"""``--no-header``: every command that takes ``--format`` prints its table or
CSV rows without the column titles when asked, for a script."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from tests.unit.cli.test_option_forms import COMMANDS

from collectbus.cli.main import cli
from collectbus.store import open as open_store
from collectbus.testing.hosts import make_host_sample

S = 10**9


def test_every_command_with_format_takes_no_header() -> None:
    with_format = [
        path for path, command in COMMANDS if any(p.name == "fmt" for p in command.params)
    ]
    assert "host" in with_format
    assert "db status" in with_format
    lacking = [
        path
        for path, command in COMMANDS
        if path in with_format
        and not any("--no-header" in getattr(p, "opts", ()) for p in command.params)
    ]
    assert lacking == []


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'cb.db'}"
    now = time.time_ns()
    with open_store(url) as store:
        store.write([make_host_sample("a", now - (3 - i) * 10 * S) for i in range(3)])
    return url


def _host(url: str, *args: str) -> list[str]:
    result = CliRunner().invoke(cli, ["--db", url, "host", "--since", "5m", *args])
    assert result.exit_code == 0, result.output
    return result.output.splitlines()


def test_csv_without_header_is_the_rows_only(url: str) -> None:
    with_header = _host(url, "--format", "csv")
    assert with_header[0].startswith("time,host,")
    assert _host(url, "--format", "csv", "--no-header") == with_header[1:]


def test_table_without_header_has_no_titles(url: str) -> None:
    bare = _host(url, "--no-header")
    assert len(bare) == 3  # the three samples, nothing else
    assert not any("cpu %" in line for line in bare)
    assert "cpu %" in "\n".join(_host(url))
