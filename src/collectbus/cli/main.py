"""The ``collectbus`` command.

Exit codes:

- 0: success;
- 1: the work failed (a collector, the database, the daemon);
- 2: bad usage or configuration;
- 3: ``daemon status``/``stop``: no daemon is running.

Every error is one line on standard error, ``collectbus: error: ...``, with a
hint on the next line when there is one; ``-v`` adds the traceback.

The global options (``--config``, ``--db``, ``--proc-root``, ``--utc``, ``-v``) may come
before the command or after it (``collectbus host --db URL -v``): one
definition, :data:`GLOBAL_OPTIONS`, makes both.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from collectbus import __version__
from collectbus.cli.context import CliContext
from collectbus.cli.exitcodes import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from collectbus.cli.lazy import LazyCommand, LazyGroup
from collectbus.cli.usage import describe_usage_error, one_line
from collectbus.errors import CollectBusError, ConfigError

_Command = TypeVar("_Command", bound=click.Command)

PROG_NAME = "collectbus"

#: Every command, imported when it runs; the one-line help is what ``--help`` lists.
COMMANDS = {
    "aggregate": LazyCommand(
        "collectbus.cli.aggregate:aggregate", "Incremental aggregates: run, show, list, reset."
    ),
    "analyze": LazyCommand(
        "collectbus.cli.analyze:analyze",
        "Job waits, runtimes and efficiency; queue depth and node states.",
    ),
    "calls": LazyCommand(
        "collectbus.cli.calls:calls",
        "Recorded calls: the newest, the slowest (--slowest N), the failed (--errors),"
        " or statistics per handler (--stats).",
    ),
    "daemon": LazyCommand(
        "collectbus.cli.daemon:daemon",
        "Collect in the background; the PID file names the host and user.",
    ),
    "db": LazyCommand("collectbus.cli.db:db", "Manage the database (SQLite file or PostgreSQL)."),
    "history": LazyCommand(
        "collectbus.cli.jobs:history",
        "Job changes: state, substate, queue, priority, hosts, comment.",
    ),
    "host": LazyCommand(
        "collectbus.cli.host:host",
        "Host rates from stored samples: CPU, disks (iostat -x), network, memory, PSI, cgroup.",
    ),
    "hosts": LazyCommand(
        "collectbus.cli.hosts:hosts",
        "Every host of the store: last sample, state, latest CPU %, memory used %, load1.",
    ),
    "ingest": LazyCommand(
        "collectbus.cli.ingest:ingest",
        "Consume what agents publish to NATS JetStream ([sink.nats]) into the store.",
    ),
    "job": LazyCommand(
        "collectbus.cli.jobs:job", "One job and its whole history, or with --usage what it used."
    ),
    "jobs": LazyCommand(
        "collectbus.cli.jobs:jobs", "Stored jobs: state, wait, runtime, size, exit status."
    ),
    "nodes": LazyCommand(
        "collectbus.cli.jobs:nodes",
        "Nodes as last recorded: state, CPUs and GPUs allocated, jobs.",
    ),
    "queues": LazyCommand(
        "collectbus.cli.jobs:queues",
        "Queues (Slurm: partitions) as last recorded, with job counts.",
    ),
    "reservations": LazyCommand(
        "collectbus.cli.reservations:reservations",
        "Stored reservations: state, start, end, nodes, users.",
    ),
    "record": LazyCommand(
        "collectbus.cli.record:record",
        "Run CMD and record host metrics on every host while it runs.",
    ),
    "report": LazyCommand(
        "collectbus.cli.report:report",
        "Write an HTML page with CPU, memory, disk and network charts per host.",
    ),
    "run": LazyCommand(
        "collectbus.cli.run:run", "Collect in the foreground into the store, then print a summary."
    ),
    "serve": LazyCommand(
        "collectbus.cli.serve:serve",
        "Serve Prometheus /metrics, a JSON API (/api/health, /api/hosts,"
        " /api/hosts/HOST/rates, /api/aggregates), a dashboard at / and the fleet at /fleet.",
    ),
}

#: The subcommands of ``collectbus collect``.
COLLECT_COMMANDS = {
    "host": LazyCommand("collectbus.cli.run:collect_host", "Read /proc once and print the sample."),
    "jobusage": LazyCommand(
        "collectbus.cli.jobusage:collect_jobusage",
        "Read the usage of each batch job on this node once and print it.",
    ),
    "processes": LazyCommand(
        "collectbus.cli.processes:collect_processes",
        "Read the processes twice, INTERVAL apart, and print the top by CPU % and by RSS.",
    ),
    "pbs": LazyCommand(
        "collectbus.cli.pbs:collect_pbs",
        "Run one PBS command for ENTITY now and print what it lists.",
    ),
    "slurm": LazyCommand(
        "collectbus.cli.slurm:collect_slurm",
        "Run the Slurm commands for ENTITY now and print what they list.",
    ),
}


#: The global options: (declarations, settings). The CliContext field is the option's name.
GLOBAL_OPTIONS: tuple[tuple[tuple[str, ...], dict[str, Any]], ...] = (
    (
        ("--config", "config_path"),
        {
            "metavar": "FILE",
            "help": "Config file (default: ./collectbus.toml, then ~/.config/collectbus/,"
            " then /etc/collectbus/).",
        },
    ),
    (
        ("--db", "db_url"),
        {
            "metavar": "URL",
            "help": "Database URL: sqlite:///collectbus.db (default) or postgresql://user@host/db.",
        },
    ),
    (
        ("--proc-root", "proc_root"),
        {"metavar": "DIR", "help": "Read /proc files from DIR instead of /proc."},
    ),
    (
        ("--utc", "utc"),
        {
            "is_flag": True,
            "help": "Times in UTC: in tables, and ISO --since/--until without a zone"
            " (default: local time, its zone shown). JSON and CSV are always UTC.",
        },
    ),
    (("-v", "--verbose", "verbose"), {"count": True, "help": "More logging; -vv for debug."}),
)


def _configure_logging(verbose: int) -> None:
    import logging  # here, not at the top: ``--help`` and ``--version`` need no logging

    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(format="collectbus: %(levelname)s: %(message)s", stream=sys.stderr)
    logging.getLogger().setLevel(level)
    # Alembic tells at INFO what it assumes about each database: noise here.
    logging.getLogger("alembic").setLevel(max(level, logging.WARNING))


def _after_the_command(ctx: click.Context, param: click.Parameter, value: object) -> None:
    """A global option given after the command: into the CliContext, over the one before."""
    if value is None or value == 0:
        return
    cli = ctx.find_object(CliContext)
    if cli is None:  # pragma: no cover - the group's callback always makes one
        return
    if param.name == "verbose":
        cli.verbose += int(str(value))
        _configure_logging(cli.verbose)
        return
    if param.name == "utc":
        from collectbus.timefmt import use_utc

        use_utc()
        cli.utc = True
        return
    setattr(cli, str(param.name), value)
    cli.forget_config()


def _global_options(after: bool) -> list[click.Option]:
    """The global options: for the top level, or for every command (``after``)."""
    options = []
    for decls, settings in GLOBAL_OPTIONS:
        extra: dict[str, Any] = {}
        if after:
            extra = {"expose_value": False, "callback": _after_the_command}
        elif decls[0] == "--config":
            extra = {"envvar": "COLLECTBUS_CONFIG"}
        options.append(click.Option(decls, **settings, **extra))
    return options


def _with_options(options: list[click.Option]) -> Callable[[_Command], _Command]:
    def attach(command: _Command) -> _Command:
        command.params.extend(options)
        return command

    return attach


@_with_options(_global_options(after=False))
@click.group(
    cls=LazyGroup,
    lazy_commands=COMMANDS,
    shared_params=_global_options(after=True),
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="collectbus")
@click.pass_context
def cli(
    ctx: click.Context,
    config_path: str | None,
    db_url: str | None,
    proc_root: str | None,
    utc: bool,
    verbose: int,
) -> None:
    """collectbus: collect telemetry once, keep its history, answer the questions.

    \b
    Quick start:
      collectbus run --duration 30s      collect host metrics into ./collectbus.db
      collectbus host --since 5m         CPU, memory, disk and network rates
      collectbus daemon start            keep collecting in the background
      collectbus calls --stats           recorded Python calls, per handler
      collectbus jobs --since 1d         batch jobs (PBS, Slurm) and their history
      collectbus analyze wait-times      job waits, runtimes, efficiency, queue depth

    Options may also follow the command: collectbus host --db URL -v.

    Times: tables show local time with its zone (2026-12-07 18:30:43 CET), and an
    ISO --since/--until without a zone is local time; --utc makes both UTC. JSON
    and CSV always carry RFC 3339 UTC times (2026-12-07T17:30:43.000Z).
    """
    ctx.obj = CliContext(
        config_path=config_path, db_url=db_url, proc_root=proc_root, utc=utc, verbose=verbose
    )
    if utc:
        from collectbus.timefmt import use_utc

        use_utc()
    _configure_logging(verbose)


@click.group(cls=LazyGroup, lazy_commands=COLLECT_COMMANDS)
def collect() -> None:
    """Collect one sample now and print it (nothing is stored)."""


cli.add_command(collect)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI and turn errors into one line and an exit code."""
    args = argv if argv is not None else sys.argv[1:]
    verbose = any(a in ("-v", "-vv", "--verbose") for a in args)
    try:
        cli.main(args=args, prog_name=PROG_NAME, standalone_mode=False)
    except click.exceptions.Exit as err:
        sys.exit(err.exit_code)
    except click.Abort:
        click.echo("collectbus: aborted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.exceptions.NoArgsIsHelpError as err:
        if err.ctx.parent is None:  # ``collectbus`` alone: the help asked for, on stdout
            click.echo(err.format_message())
            sys.exit(EXIT_OK)
        err.show()  # a group named without its command: the group's help
        sys.exit(err.exit_code)
    except click.UsageError as err:
        message, hint = describe_usage_error(err, cli, PROG_NAME, args)
        _print_error(message, hint)
        sys.exit(err.exit_code)
    except click.ClickException as err:
        _print_error(one_line(err.format_message()), "")
        sys.exit(err.exit_code)
    except CollectBusError as err:
        if verbose:
            import logging

            logging.getLogger("collectbus").exception("details")
        _print_error(str(err), err.hint)
        sys.exit(EXIT_USAGE if isinstance(err, ConfigError) else EXIT_FAILED)
    except KeyboardInterrupt:
        click.echo("collectbus: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(EXIT_OK)


def _print_error(message: str, hint: str) -> None:
    click.echo(f"collectbus: error: {message}", err=True)
    if hint:
        click.echo(f"  hint: {hint}", err=True)


if __name__ == "__main__":
    main()
