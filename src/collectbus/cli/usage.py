"""Click's usage errors, told the collectbus way: one error line and a hint.

Click prints a usage error as the command's usage, a "Try ... for help." line, a
blank line and ``Error: ...``. collectbus prints every error as one line, so
``collectbus jobs --bogus`` says::

    collectbus: error: jobs: no such option --bogus (did you mean --user?)
      hint: collectbus jobs --help

What click knows is kept: the command, the parameter's name, the suggestions and
the allowed choices.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import click

try:  # click's shell completion parses a partial command line leniently
    from click.shell_completion import _resolve_context
except ImportError:  # pragma: no cover - a click without it: name the root command
    _resolve_context = None  # type: ignore[assignment]


def describe_usage_error(
    err: click.UsageError, root: click.Command, prog_name: str, args: Sequence[str]
) -> tuple[str, str]:
    """The error's one-line message and its hint, for ``prog_name ARGS``."""
    ctx = err.ctx if err.ctx is not None else _context_of(root, prog_name, args)
    message = _message(err, ctx)
    # The command path without the program's own name: "jobs", "db status".
    command = ctx.command_path.partition(" ")[2]
    return (f"{command}: {message}" if command else message), f"{ctx.command_path} --help"


def one_line(message: str) -> str:
    """Click's sentence as a collectbus message: one line, lower case, no full stop."""
    text = " ".join(message.split()).removesuffix(".")
    # "Got unexpected extra argument" starts lower, "PBS" stays as it is.
    if text[:1].isupper() and text[1:2].islower():
        text = text[0].lower() + text[1:]
    return text


def _context_of(root: click.Command, prog_name: str, args: Sequence[str]) -> click.Context:
    """The context of the innermost command that ``args`` name.

    Click leaves some errors of its parser (an option without its value) without
    a context. Parsing leniently, the way click's shell completion does, finds the
    command the user was typing.
    """
    if _resolve_context is None:  # pragma: no cover
        return root.make_context(prog_name, [], resilient_parsing=True)
    return _resolve_context(root, {}, prog_name, list(args))


def _message(err: click.UsageError, ctx: click.Context) -> str:
    if isinstance(err, click.NoSuchOption):
        return f"no such option {err.option_name}{_suggestions(err.possibilities)}"
    if isinstance(err, click.NoSuchCommand):
        return f"no such command {err.command_name}{_suggestions(err.possibilities)}"
    if isinstance(err, click.MissingParameter):
        return _missing(err, ctx)
    if isinstance(err, click.BadParameter):
        name = _parameter(err, ctx)
        return f"{name}: {one_line(err.message)}" if name else one_line(err.message)
    if isinstance(err, click.BadOptionUsage):
        # "option --since requires an argument", named as in "no such option --x".
        return one_line(err.message).replace(repr(err.option_name), err.option_name)
    return one_line(err.message)


def _missing(err: click.MissingParameter, ctx: click.Context) -> str:
    kind = err.param_type or (err.param.param_type_name if err.param else "parameter")
    details = [err.message] if err.message else []
    if err.param is not None:
        # A choice says what it takes: "Choose from: table, json, csv".
        choices = err.param.type.get_missing_message(param=err.param, ctx=ctx)
        details += [choices] if choices else []
    extra = f" ({'; '.join(one_line(d) for d in details)})" if details else ""
    return f"missing {kind} {_parameter(err, ctx)}".rstrip() + extra


def _parameter(err: click.BadParameter, ctx: click.Context) -> str:
    """The parameter as the user types it: ``--format``, ``-- CMD [ARGS]...``."""
    if err.param_hint is not None:
        hints = [err.param_hint] if isinstance(err.param_hint, str) else err.param_hint
        return " / ".join(hints)
    if isinstance(err.param, click.Option):
        return " / ".join(err.param.opts)
    if isinstance(err.param, click.Argument):
        return err.param.make_metavar(ctx)
    return ""


def _suggestions(possibilities: Iterable[str] | None) -> str:
    names = sorted(possibilities or ())
    if not names:
        return ""
    if len(names) == 1:
        return f" (did you mean {names[0]}?)"
    return f" (did you mean one of {', '.join(names)}?)"
