"""Command groups whose commands are imported only when they run.

A :class:`LazyGroup` knows each command by name, as ``"module:attribute"``
and its one-line help. ``collectbus --help`` lists the commands from that
table, and a command's module (with pandas, SQLAlchemy, the store, ...) is
imported only when that command is what the command line names. A unit test
checks each table entry against the command it names.

A group may also share parameters with every command under it
(``shared_params``): the global options, accepted after the command too.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import click


class LazyCommand(NamedTuple):
    """Where a command is defined, and its one-line help for the group's listing."""

    target: str
    """``"module:attribute"``, e.g. ``"collectbus.cli.jobs:jobs"``."""
    short_help: str


class LazyGroup(click.Group):
    """A click group that imports a command's module when the command is used."""

    def __init__(
        self,
        *args: Any,
        lazy_commands: Mapping[str, LazyCommand] | None = None,
        shared_params: Sequence[click.Parameter] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands or {})
        #: Parameters every command under this group accepts too (see :func:`share_params`).
        self.shared_params = list(shared_params)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy_commands:
            self.add_command(load_command(self.lazy_commands[cmd_name].target), cmd_name)
        command = super().get_command(ctx, cmd_name)
        if command is not None and self.shared_params:
            share_params(command, self.shared_params)
        return command

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        try:
            return super().resolve_command(ctx, args)
        except click.NoSuchCommand as err:
            # Click suggests among the commands it holds: offer every command.
            raise click.NoSuchCommand(
                err.command_name, possibilities=self.list_commands(ctx), ctx=err.ctx
            ) from None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The commands and their one-line help, without importing any of them."""
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            if name in self.commands:
                command = self.commands[name]
                if command.hidden:
                    continue
                text = command.get_short_help_str(limit)
            else:
                # Shortened as click shortens a command's help, the command unloaded.
                stand_in = click.Command(name, help=self.lazy_commands[name].short_help)
                text = stand_in.get_short_help_str(limit)
            rows.append((name, text))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def load_command(target: str) -> click.Command:
    """The click command named by ``"module:attribute"``."""
    module_name, _, attribute = target.partition(":")
    command = getattr(importlib.import_module(module_name), attribute)
    if not isinstance(command, click.Command):  # pragma: no cover - a wrong table entry
        raise TypeError(f"{target} is not a click command")
    return command


def share_params(command: click.Command, params: Sequence[click.Parameter]) -> None:
    """Give ``command`` and the commands under it ``params``, once each; a
    command that has an option of the same name keeps its own."""
    taken = {name for p in command.params for name in p.opts}
    command.params.extend(p for p in params if p not in command.params and not taken & set(p.opts))
    if isinstance(command, LazyGroup):
        command.shared_params = list(params)  # its commands get them as they load
    elif isinstance(command, click.Group):
        for sub in command.commands.values():
            share_params(sub, params)
