"""``collectbus`` starts light: help and version import none of the heavy libraries,
every command is found through the lazy table, and Ctrl-C during start-up is
one line and exit 130.

Each check runs in a fresh interpreter: what one test imported would
otherwise hide what the next one imports.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import click
import pytest

from collectbus.cli.lazy import LazyGroup, load_command
from collectbus.cli.main import cli

HEAVY = ("pandas", "numpy", "sqlalchemy", "alembic", "pydantic")


def _imported_after(args: list[str]) -> tuple[list[str], str]:
    """The heavy packages imported by ``collectbus ARGS``, and what it printed."""
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
        print(json.dumps([heavy, out.getvalue()]))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    heavy, printed = json.loads(done.stdout)
    return heavy, printed


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
