"""Times on the command line: tables in local time with the zone, ``--utc``
before or after the command, JSON and CSV in RFC 3339 UTC."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from collectbus.store import open as open_store
from collectbus.testing.hosts import make_host_sample
from tests.integration.cli_helpers import collectbus, collectbus_env

S = 10**9
#: Samples at 17:30:00 and 17:30:10 UTC on a winter day (18:30 CET).
T0 = int(dt.datetime(2026, 1, 7, 17, 30, tzinfo=dt.UTC).timestamp()) * S


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    url = f"sqlite:///{tmp_path / 'cb.db'}"
    with open_store(url) as store:
        store.write([make_host_sample("a", T0 + i * 10 * S) for i in range(3)])
    return {**collectbus_env(tmp_path, url), "TZ": "Europe/Paris"}


def _host(tmp_path: Path, env: dict[str, str], *args: str) -> str:
    result = collectbus("host", "--until", "2026-01-08T00:00Z", *args, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_tables_show_local_time_with_its_zone(tmp_path: Path, env: dict[str, str]) -> None:
    out = _host(tmp_path, env, "--since", "2026-01-07T18:29")  # local: 17:29 UTC
    assert "2026-01-07 18:30:10 CET" in out
    assert "UTC" not in out


@pytest.mark.parametrize("where", ["before", "after"])
def test_utc_option_makes_tables_and_naive_since_utc(
    tmp_path: Path, env: dict[str, str], where: str
) -> None:
    args = ["host", "--since", "2026-01-07T17:30:05", "--until", "2026-01-08T00:00Z"]
    args = ["--utc", *args] if where == "before" else [*args, "--utc"]
    result = collectbus(*args, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    # 17:30:05 read as UTC: the 17:30:00 sample is out, the later two are in.
    assert "2026-01-07 17:30:00 UTC" not in result.stdout
    assert "2026-01-07 17:30:20 UTC" in result.stdout
    assert "CET" not in result.stdout


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_json_and_csv_times_are_rfc3339_utc(tmp_path: Path, env: dict[str, str], fmt: str) -> None:
    out = _host(tmp_path, env, "--since", "2026-01-07T17:00Z", "--format", fmt)
    times = (
        [r["time"] for r in json.loads(out)]
        if fmt == "json"
        else [line.split(",")[0] for line in out.splitlines()[1:]]
    )
    assert times == [
        "2026-01-07T17:30:00.000Z",
        "2026-01-07T17:30:10.000Z",
        "2026-01-07T17:30:20.000Z",
    ]


def test_a_bare_small_since_is_a_usage_error_with_a_hint(
    tmp_path: Path, env: dict[str, str]
) -> None:
    result = collectbus("host", "--since", "5", cwd=tmp_path, env=env)
    assert result.returncode == 2
    assert "needs a unit" in result.stderr
    assert "5m" in result.stderr
    assert result.stdout == ""


def test_help_says_times_are_local_unless_utc(tmp_path: Path, env: dict[str, str]) -> None:
    out = collectbus("--help", cwd=tmp_path, env=env).stdout
    assert "--utc" in out
    assert "local time" in out
