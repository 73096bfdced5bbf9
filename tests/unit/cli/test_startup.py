"""``collectbus`` starts light: help and version import none of the heavy libraries,
``jobs`` and ``host`` read the store with SQLAlchemy alone, every command is
found through the lazy table, and Ctrl-C during start-up is one line and exit 130.

Each check runs in a fresh interpreter: what one test imported would
otherwise hide what the next one imports.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import click
import pytest

from collectbus.cli.lazy import LazyGroup, load_command
from collectbus.cli.main import cli
from collectbus.jobtrack.writer import TrackedStore
from collectbus.records import COMPLETE_LISTING, CollectionEvent
from collectbus.store import open as open_store
from collectbus.testing.hosts import make_host_sample
from collectbus.testing.schedulers import make_pbs_job

HEAVY = ("pandas", "numpy", "sqlalchemy", "alembic", "pydantic", "rich")
S = 10**9


def _imported_after(
    args: list[str], cwd: Path | None = None, *, under: str | None = None
) -> tuple[list[str], str]:
    """The heavy packages imported by ``collectbus ARGS`` (or, with ``under``, the
    modules of that package it imported), and what it printed."""
    code = textwrap.dedent(
        f"""
        import contextlib, io, json, sys
        from collectbus.cli.main import main
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            try:
                main({args!r})
            except SystemExit:
                pass
        heavy = sorted({{m.split(".")[0] for m in sys.modules}} & set({HEAVY!r}))
        if {under!r} is not None:
            heavy = sorted(m for m in sys.modules if m.startswith({under!r} + "."))
        print(json.dumps([heavy, out.getvalue()]))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        cwd=cwd,
    )
    heavy, printed = json.loads(done.stdout)
    return heavy, printed


def test_jobs_and_host_read_with_sqlalchemy_alone(tmp_path: Path) -> None:
    """No NumPy, Alembic, pydantic, pandas or rich: the summary, the table and the
    schema check are done without them."""
    url = f"sqlite:///{tmp_path / 'cb.db'}"
    now = time.time_ns()
    jobs = [make_pbs_job(100 + i, submit_ns=now - 600 * S, observed_ns=now - S) for i in range(3)]
    listing = CollectionEvent(
        source="pbs",
        host="h",
        started_ns=now - S,
        duration_ns=S,
        status="ok",
        records=len(jobs),
        details=(COMPLETE_LISTING, ("cluster", "aurora")),
    )
    with open_store(url) as store:
        TrackedStore(store).write([*jobs, listing])
        store.write([make_host_sample("h", now - i * 10 * S) for i in range(6, 0, -1)])
    heavy, printed = _imported_after(["--db", url, "jobs", "--since", "1d"], cwd=tmp_path)
    assert printed.count(".pbs01.") == 3  # the table, drawn
    assert heavy == ["sqlalchemy"]
    args = ["--db", url, "host", "--since", "5m", "--format", "json"]
    heavy, printed = _imported_after(args, cwd=tmp_path)
    rows = json.loads(printed)
    assert len(rows) == 6
    assert rows[-1]["cpu_percent"] == pytest.approx(40.0)
    assert heavy == ["sqlalchemy"]
    heavy, printed = _imported_after(["--db", url, "host", "--since", "5m"], cwd=tmp_path)
    assert "cpu %" in printed
    assert heavy == ["sqlalchemy"]
    heavy, printed = _imported_after(["--db", url, "hosts", "--format", "json"], cwd=tmp_path)
    assert json.loads(printed)[0]["cpu_percent"] == pytest.approx(40.0)
    assert heavy == ["sqlalchemy"]


#: The store's write side, the tables and the record types: what reading host
#: samples does without.
WRITE_SIDE = {
    "collectbus.records",
    "collectbus.store.store",
    "collectbus.store.schema",
    "collectbus.store.hostsamples",
    "collectbus.store.quarantine",
    "collectbus.store.jobtables",
    "collectbus.store.reservations",
    "collectbus.store.retention",
    "collectbus.store.calls",
    "collectbus.store.migrate",
}


def test_host_reads_through_the_stores_read_side_alone(tmp_path: Path) -> None:
    """The summary opens ``collectbus.store.reader``: none of the store's
    writers, job or reservation tables, quarantine or retention is imported,
    no table is built (``schema``), and the record types are not needed."""
    url = f"sqlite:///{tmp_path / 'cb.db'}"
    now = time.time_ns()
    with open_store(url) as store:
        store.write([make_host_sample("h", now - i * 10 * S) for i in range(6, 0, -1)])
    for command, fmt, answered in (
        ("host", "json", '"metric": "summary"'),
        ("host", "table", "cpu %"),
        ("hosts", "json", '"state": '),
    ):
        args = ["--db", url, command, "--since", "5m", "--format", fmt]
        args = args if command == "host" else ["--db", url, command, "--format", fmt]
        modules, printed = _imported_after(args, cwd=tmp_path, under="collectbus")
        assert answered in printed  # the summary, read and printed
        assert "collectbus.store.reader" in modules
        assert not WRITE_SIDE & set(modules), (command, fmt)


def test_job_listings_read_through_the_stores_read_side(tmp_path: Path) -> None:
    """``jobs``, ``history``, ``nodes`` and ``queues`` read the job tables through
    ``collectbus.store.reader``: no writer, quarantine, retention or store class."""
    url = f"sqlite:///{tmp_path / 'cb.db'}"
    with open_store(url):
        pass
    writers = WRITE_SIDE - {"collectbus.records", "collectbus.store.schema"}
    for command in ("jobs", "history", "nodes", "queues"):
        args = ["--db", url, command, "--format", "json"]
        modules, printed = _imported_after(args, cwd=tmp_path, under="collectbus")
        assert printed.strip() == "[]", command  # read, and nothing there
        assert "collectbus.store.reader" in modules, command
        assert not writers & set(modules), (command, writers & set(modules))


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--help"], "Commands:"),
        (["--version"], "collectbus, version"),
        (["jobs", "--help"], "--since TIME"),
        (["host", "--help"], "--metric FAMILIES"),
        (["db", "--help"], "status"),
        (["daemon", "--help"], "start"),
        (["analyze", "--help"], "wait-times"),
        (["calls", "--help"], "--stats"),
        (["collect", "--help"], "pbs"),
        (["ingest", "--help"], "--durable NAME"),
        (["hosts", "--help"], "silent      older than 10 intervals"),
    ],
)
def test_help_and_version_import_no_heavy_library(args: list[str], expected: str) -> None:
    heavy, printed = _imported_after(args)
    assert expected in printed  # the command answered, and answered this
    assert heavy == [], f"collectbus {' '.join(args)} imported {heavy}"


def _groups() -> list[tuple[str, LazyGroup]]:
    found = [("collectbus", cli)]
    ctx = click.Context(cli)
    for name in cli.list_commands(ctx):
        command = cli.get_command(ctx, name)
        if isinstance(command, LazyGroup):
            found.append((name, command))
    return found


@pytest.mark.parametrize(
    ("name", "group"), _groups(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_each_lazy_entry_names_its_command_and_its_help(name: str, group: LazyGroup) -> None:
    """The one-line help that ``--help`` lists is the command's own."""
    assert group.lazy_commands, name
    for command_name, entry in group.lazy_commands.items():
        command = load_command(entry.target)
        assert command.name == command_name, entry.target
        assert command.get_short_help_str(limit=1000) == entry.short_help, entry.target


def test_help_lists_every_command_once_in_order() -> None:
    _heavy, printed = _imported_after(["--help"])
    listed = printed.split("Commands:\n", 1)[1].splitlines()
    # A command's line starts with its name; a wrapped help line is indented further.
    names = [line.split()[0] for line in listed if line.startswith("  ") and line[2:3] != " "]
    assert names == sorted(cli.list_commands(click.Context(cli)))
    assert {"jobs", "host", "collect", "aggregate", "serve"} <= set(names)


def test_unknown_command_suggests_a_lazy_one() -> None:
    ctx = click.Context(cli)
    with pytest.raises(click.NoSuchCommand) as caught:
        cli.resolve_command(ctx, ["qeueus"])
    assert caught.value.possibilities == ["queues"]


def test_ctrl_c_during_start_up_exits_130_without_a_traceback() -> None:
    """A real SIGINT while the command line is being imported."""
    code = textwrap.dedent(
        """
        import signal, sys

        # As at a terminal, whatever this test's parent did with SIGINT (a shell's
        # background job starts with it ignored, and Python then leaves it ignored).
        signal.signal(signal.SIGINT, signal.default_int_handler)

        class Interrupt:
            def find_spec(self, name, path=None, target=None):
                if name == "collectbus.cli.main":
                    signal.raise_signal(signal.SIGINT)
                return None

        sys.meta_path.insert(0, Interrupt())
        sys.argv = ["collectbus", "--help"]
        from collectbus.cli.entry import main
        main()
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 130
    assert done.stderr == "collectbus: interrupted\n"
    assert done.stdout == ""
