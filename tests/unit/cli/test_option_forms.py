"""One option form per kind of value, in every command's ``--help``.

Every command is loaded (the lazy table names them all); each option that
takes a value names it with a word a user understands (``TIME``, ``N``,
``URL``...), never click's type names (``FLOAT``, ``INTEGER RANGE``), and every
option whose name says it is a time span takes a duration (``5s``, ``1m``).
"""

from __future__ import annotations

from collections.abc import Iterator

import click
import pytest

from collectbus.cli.lazy import LazyGroup, load_command
from collectbus.cli.main import cli

#: Options that are time spans by name.
TIME_SPANS = {"interval", "wait", "timeout", "duration", "every", "scrape_every"}


def _commands() -> Iterator[tuple[str, click.Command]]:
    def walk(prefix: str, group: click.Group) -> Iterator[tuple[str, click.Command]]:
        ctx = click.Context(group)
        for name in group.list_commands(ctx):
            if isinstance(group, LazyGroup) and name in group.lazy_commands:
                command = load_command(group.lazy_commands[name].target)
            else:
                command = group.get_command(ctx, name)
            assert command is not None, name
            path = f"{prefix} {name}".strip()
            yield path, command  # a group may take options of its own (host)
            if isinstance(command, click.Group):
                yield from walk(path, command)

    yield from walk("", cli)


COMMANDS = list(_commands())


def test_every_command_is_found() -> None:
    names = {name for name, _ in COMMANDS}
    assert {"host", "jobs", "record", "daemon start", "daemon stop", "db status"} <= names


@pytest.mark.parametrize(("name", "command"), COMMANDS, ids=[n for n, _ in COMMANDS])
def test_options_name_their_values_plainly(name: str, command: click.Command) -> None:
    ctx = click.Context(command)
    for param in command.params:
        if not isinstance(param, click.Option) or param.is_flag or param.count:
            continue
        if isinstance(param.type, click.Choice):
            continue  # shown as [a|b|c]
        metavar = param.make_metavar(ctx)
        for type_name in ("INTEGER", "FLOAT", "TEXT", "RANGE", "PATH", "FILENAME"):
            assert type_name not in metavar, f"{name} {param.opts[0]}: {metavar}"


@pytest.mark.parametrize(("name", "command"), COMMANDS, ids=[n for n, _ in COMMANDS])
def test_time_spans_take_durations(name: str, command: click.Command) -> None:
    for param in command.params:
        if isinstance(param, click.Option) and param.name in TIME_SPANS:
            ctx = click.Context(command)
            assert param.callback is not None, f"{name} {param.opts[0]}"
            assert param.process_value(ctx, "500ms") == pytest.approx(0.5), name
            assert param.process_value(ctx, "2m") == pytest.approx(120.0), name
