"""``collectbus analyze``: wait times, runtime, walltime efficiency, queue depth,
node states and leaderboards, from the stored job history
(:mod:`collectbus.analysis.jobs`, :mod:`collectbus.analysis.top`), and CPU
and memory efficiency from the jobs' usage samples
(:mod:`collectbus.analysis.efficiency`).

Tables show durations as ``1d 02:03:04``; JSON and CSV carry seconds.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import TYPE_CHECKING

import click

from collectbus.cli.context import CliContext, pass_cli
from collectbus.cli.jobformat import collecting, duration, nothing, when
from collectbus.cli.output import duration_option, format_option, render, time_window

if TYPE_CHECKING:
    import pandas as pd

GROUPS = ("user", "project", "queue", "size", "cluster")
DEFAULT_STEPS = 24


def _percentiles(_ctx: click.Context, _param: click.Parameter, value: str) -> tuple[float, ...]:
    try:
        out = tuple(float(p) for p in value.split(",") if p.strip())
    except ValueError:
        raise click.BadParameter(
            f"{value!r}: give numbers between 0 and 100, e.g. 50,90,99"
        ) from None
    if not out or any(not 0 <= p <= 100 for p in out):
        raise click.BadParameter(f"{value!r}: give numbers between 0 and 100, e.g. 50,90,99")
    return out


def _window_options(default_since: str) -> list[click.Option]:
    return [
        click.Option(
            ["--since"],
            default=default_since,
            show_default=True,
            metavar="TIME",
            help="Start: 15m, 2h, 7d, an ISO time.",
        ),
        click.Option(
            ["--until"], default="now", show_default=True, metavar="TIME", help="End of the window."
        ),
        click.Option(["--cluster"], metavar="NAME", help="Only this cluster."),
        click.Option(
            ["--collect"],
            is_flag=True,
            help="First collect once from the enabled schedulers and store it, as the daemon does.",
        ),
    ]


def summary_options(fn: click.Command) -> click.Command:
    fn.params.extend(
        [
            *_window_options("30d"),
            click.Option(
                ["--by"],
                type=click.Choice(GROUPS),
                help="One row per user, project "
                "(account), queue, size (node-count bin) or cluster.",
            ),
            click.Option(
                ["--percentiles"],
                default="50,90,99",
                show_default=True,
                callback=_percentiles,
                metavar="P,P,...",
                help="Percentiles to show.",
            ),
        ]
    )
    return fn


@click.group()
def analyze() -> None:
    """Job waits, runtimes and efficiency; queue depth and node states.

    \b
    Examples:
      collectbus analyze wait-times --by user --since 30d
      collectbus analyze walltime-efficiency --by project --percentiles 10,50,90
      collectbus analyze queue-depth --since 2d --step 1h
      collectbus analyze top --by project --metric core-hours --since 30d
      collectbus analyze efficiency --by account --since 30d --min-efficiency 50%
    """


@contextlib.contextmanager
def _window(
    cli: CliContext, since: str, until: str, collect: bool, entity: str = "jobs"
) -> Iterator[tuple[int, int]]:
    """The window in nanoseconds, after ``--collect`` (so that "now" covers what
    it stored); a bad window is refused before collecting."""
    time_window(since, until)
    with collecting(cli, collect, {entity}):
        yield time_window(since, until)


def _frame(cli: CliContext, since_ns: int, until_ns: int, cluster: str | None) -> pd.DataFrame:
    from collectbus.analysis.jobs import jobs_frame

    store = cli.read_store()
    try:
        return jobs_frame(store, since_ns=since_ns, until_ns=until_ns, cluster=cluster)
    finally:
        store.close()


def _records(table: pd.DataFrame) -> list[dict[str, object]]:
    return [{str(k): v for k, v in row.items()} for row in table.to_dict("records")]


def _show(table: pd.DataFrame, fmt: str, by: str | None, what: str, seconds: bool = True) -> None:
    if table.empty:
        nothing(what, fmt)
        return
    table = table.rename(columns={"group": by or "group"})
    rows = _records(table)
    if fmt == "table" and seconds:
        for row in rows:
            for key, value in row.items():
                if key.endswith("_s") and isinstance(value, float):
                    row[key] = duration(value)
        headers = {c: c.removesuffix("_s") for c in table.columns}
        render(rows, fmt, columns=list(table.columns), headers=headers)
        return
    render(rows, fmt, columns=list(table.columns))


@analyze.command("wait-times")
@format_option
@pass_cli
def wait_times_cmd(
    cli: CliContext,
    fmt: str,
    since: str,
    until: str,
    cluster: str | None,
    collect: bool,
    by: str | None,
    percentiles: tuple[float, ...],
) -> None:
    """Wait times, under three definitions.

    Of the jobs that started:

    \b
      queued            start - submit (what the user waited)
      eligible          start - eligible time (PBS etime, Slurm eligible):
                        the wait once no hold, dependency or limit held it
      eligible_seconds  PBS's own accrued eligible_time (PBS only)
    """
    from collectbus.analysis.jobs import WAIT_MEANINGS, wait_times

    with _window(cli, since, until, collect) as (since_ns, until_ns):
        frame = _frame(cli, since_ns, until_ns, cluster)
        table = wait_times(frame, by=by, percentiles=percentiles)
        _show(table, fmt, by, "started jobs")
        if fmt == "table" and not table.empty:
            for name, meaning in WAIT_MEANINGS.items():
                click.echo(f"  {name}: {meaning}")


@analyze.command("runtime")
@format_option
@pass_cli
def runtime_cmd(
    cli: CliContext,
    fmt: str,
    since: str,
    until: str,
    cluster: str | None,
    collect: bool,
    by: str | None,
    percentiles: tuple[float, ...],
) -> None:
    """Runtime (end - start) of jobs that ended."""
    from collectbus.analysis.jobs import runtime

    with _window(cli, since, until, collect) as (since_ns, until_ns):
        frame = _frame(cli, since_ns, until_ns, cluster)
        _show(runtime(frame, by=by, percentiles=percentiles), fmt, by, "finished jobs")


@analyze.command("walltime-efficiency")
@format_option
@pass_cli
def efficiency_cmd(
    cli: CliContext,
    fmt: str,
    since: str,
    until: str,
    cluster: str | None,
    collect: bool,
    by: str | None,
    percentiles: tuple[float, ...],
) -> None:
    """Walltime used / requested of jobs that ended.

    1.00 means the job used all the walltime it asked for."""
    from collectbus.analysis.jobs import walltime_efficiency

    with _window(cli, since, until, collect) as (since_ns, until_ns):
        frame = _frame(cli, since_ns, until_ns, cluster)
        table = walltime_efficiency(frame, by=by, percentiles=percentiles)
        _show(table, fmt, by, "finished jobs with a walltime request", seconds=False)


def _step_ns(since_ns: int, until_ns: int, step_s: float | None) -> int:
    if step_s is not None:
        step = int(step_s * 1e9)
    else:
        step = max(1, math.ceil((until_ns - since_ns) / DEFAULT_STEPS))
    if (until_ns - since_ns) // step > 100_000:
        raise click.BadParameter("more than 100,000 steps in this window; use a larger --step")
    return step


def _series(table: pd.DataFrame, fmt: str, what: str) -> None:
    if table.empty:
        nothing(what, fmt)
        return
    rows = _records(table)
    for row in rows:
        row["time"] = when(int(str(row["time_ns"])), fmt)
    columns = ["time", *(c for c in table.columns if c != "time_ns")]
    render(
        rows, fmt, columns=columns if fmt == "table" else ["time", *table.columns[1:], "time_ns"]
    )


def series_options(fn: click.Command) -> click.Command:
    fn.params.extend(
        [
            *_window_options("1d"),
            click.Option(
                ["--step"],
                callback=duration_option,
                metavar="TIME",
                help="Time between rows (default: the window / 24).",
            ),
        ]
    )
    return fn


@analyze.command("queue-depth")
@click.option(
    "--by",
    type=click.Choice(("queue", "user", "cluster")),
    default="queue",
    show_default=True,
    help="One row per time and queue, user or cluster.",
)
@click.option("--overall", is_flag=True, help="One row per time, all queues together.")
@format_option
@pass_cli
def queue_depth_cmd(
    cli: CliContext,
    fmt: str,
    by: str,
    overall: bool,
    since: str,
    until: str,
    cluster: str | None,
    collect: bool,
    step: float | None,
) -> None:
    """Jobs queued, held and running over time.

    Counted from the recorded state changes, so as exact as the collection
    interval; per queue (the job's current one), user or cluster."""
    from collectbus.analysis.jobs import queue_depth

    _step_ns(*time_window(since, until), step)  # a bad --step is refused before collecting
    with _window(cli, since, until, collect) as (since_ns, until_ns):
        store = cli.read_store()
        try:
            table = queue_depth(
                store,
                since_ns=since_ns,
                until_ns=until_ns,
                step_ns=_step_ns(since_ns, until_ns, step),
                cluster=cluster,
                by=None if overall else by,
            )
        finally:
            store.close()
        _series(table, fmt, "job state changes")


@analyze.command("node-states")
@format_option
@pass_cli
def node_states_cmd(
    cli: CliContext,
    fmt: str,
    since: str,
    until: str,
    cluster: str | None,
    collect: bool,
    step: float | None,
) -> None:
    """Nodes per state over time.

    One column per state seen (idle, allocated, down, ...), from the stored
    node snapshots."""
    from collectbus.analysis.jobs import node_states

    _step_ns(*time_window(since, until), step)  # a bad --step is refused before collecting
    with _window(cli, since, until, collect, "nodes") as (since_ns, until_ns):
        store = cli.read_store()
        try:
            table = node_states(
                store,
                since_ns=since_ns,
                until_ns=until_ns,
                step_ns=_step_ns(since_ns, until_ns, step),
                cluster=cluster,
            )
        finally:
            store.close()
        _series(table, fmt, "node snapshots")


@analyze.command("top")
@click.option(
    "--by",
    type=click.Choice(("user", "project")),
    default="user",
    show_default=True,
    help="Rank users, or projects (PBS Account_Name or project, Slurm account).",
)
@click.option(
    "--metric",
    type=click.Choice(("core-hours", "jobs", "wait")),
    default="core-hours",
    show_default=True,
    help="What ranks them: CPU-hours run in the window, jobs, or mean queued wait.",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    metavar="N",
    help="The N first.",
)
@format_option
@pass_cli
def top_cmd(
    cli: CliContext,
    fmt: str,
    by: str,
    metric: str,
    limit: int,
    since: str,
    until: str,
    cluster: str | None,
    collect: bool,
) -> None:
    """Leaderboard: the users or projects with the most core-hours, jobs or wait.

    Of the jobs that existed in the window (as every analyze command counts
    them). Every row shows every figure; --metric chooses the order.

    \b
      core-hours  CPUs x the time each job ran inside the window (to its end,
                  or to the last time it was seen when no end is recorded)
      jobs        jobs in the window
      wait        mean (and median) start - submit of the jobs that started;
                  a job that never ran has no wait
    """
    from collectbus.analysis.top import top

    with _window(cli, since, until, collect) as (since_ns, until_ns):
        frame = _frame(cli, since_ns, until_ns, cluster)
        table = top(frame, by=by, metric=metric, since_ns=since_ns, until_ns=until_ns, limit=limit)
        _show_top(table, fmt, f"top {by}s by {metric}")


def _show_top(table: pd.DataFrame, fmt: str, title: str) -> None:
    if table.empty:
        nothing("jobs", fmt)
        return
    rows = _records(table)
    if fmt != "table":
        render(rows, fmt, columns=list(table.columns))
        return
    for row in rows:
        for key in ("mean_wait_s", "median_wait_s"):
            row[key] = duration(row[key])  # type: ignore[arg-type]
    headers = {c: c.removesuffix("_s") for c in table.columns}
    render(rows, fmt, columns=list(table.columns), headers=headers, title=title)


for _command in (wait_times_cmd, runtime_cmd, efficiency_cmd):
    summary_options(_command)
for _command in (queue_depth_cmd, node_states_cmd):
    series_options(_command)
top_cmd.params.extend(_window_options("30d"))


def _fraction(_ctx: click.Context, _param: click.Parameter, value: str | None) -> float | None:
    """``0.5`` or ``50%``."""
    if value is None:
        return None
    text = value.strip()
    try:
        number = float(text.removesuffix("%")) / (100 if text.endswith("%") else 1)
    except ValueError:
        raise click.BadParameter(
            f"{value!r}: give a fraction (0.5) or a percentage (50%)"
        ) from None
    if not 0 <= number <= 1:
        raise click.BadParameter(f"{value!r}: between 0 and 1 (0 % and 100 %)")
    return number


@analyze.command("efficiency")
@click.option(
    "--by",
    type=click.Choice(("user", "account", "queue", "partition")),
    default="user",
    show_default=True,
    help="One row per user, account (project), queue or Slurm partition.",
)
@click.option(
    "--min-efficiency",
    callback=_fraction,
    metavar="FRACTION",
    help="Flag jobs below this CPU efficiency (0.5 or 50%%): the BELOW_MIN column counts them.",
)
@click.option("--limit", type=click.IntRange(min=1), metavar="N", help="The N most wasteful only.")
@format_option
@pass_cli
def usage_efficiency_cmd(
    cli: CliContext,
    fmt: str,
    by: str,
    min_efficiency: float | None,
    limit: int | None,
    since: str,
    until: str,
    cluster: str | None,
    collect: bool,
) -> None:
    """Who wastes what: core-hours and memory requested against used.

    Of the jobs that started and existed in the window, each counted whole,
    with what the jobusage collector sampled on their nodes (collectbus job
    ID --usage shows one). Ranked by wasted core-hours.

    \b
      core_hours_requested  cores x elapsed (to now while running)
      core_hours_used       CPU time
      efficiency            used / requested
      wasted_core_hours     requested - used
      mem_efficiency        memory peak / memory requested
      mem_over_request      memory requested - peak, mean per job
      measured              jobs with samples (the others count only in jobs)
    """
    from collectbus.analysis.efficiency import efficiency, job_efficiency

    with _window(cli, since, until, collect) as (since_ns, until_ns):
        store = cli.read_side()
        try:
            jobs = job_efficiency(store, since_ns=since_ns, until_ns=until_ns, cluster=cluster)
        finally:
            store.close()
        table = efficiency(jobs, by=by, min_efficiency=min_efficiency)
        if limit is not None:
            table = table.head(limit)
        _show_efficiency(table, fmt)


def _show_efficiency(table: pd.DataFrame, fmt: str) -> None:
    from collectbus.analysis.jobusage import size_text

    if table.empty:
        nothing("started jobs", fmt)
        return
    rows = [{k: None if v != v else v for k, v in row.items()} for row in _records(table)]
    if fmt != "table":
        render(rows, fmt, columns=list(table.columns))
        return
    for row in rows:
        for key in ("efficiency", "mem_efficiency"):
            value = row[key]
            row[key] = "" if value is None else f"{float(str(value)) * 100:.1f} %"
        for key in ("core_hours_requested", "core_hours_used", "wasted_core_hours"):
            row[key] = f"{float(str(row[key])):.1f}"
        over = row["mem_over_request_bytes"]
        row["mem_over_request_bytes"] = "" if over is None else size_text(float(str(over)))
    headers = {
        "core_hours_requested": "core-h requested",
        "core_hours_used": "core-h used",
        "wasted_core_hours": "core-h wasted",
        "mem_over_request_bytes": "mem over-request",
        "mem_efficiency": "mem efficiency",
        "below_min": "below min",
    }
    render(rows, fmt, columns=list(table.columns), headers=headers)


usage_efficiency_cmd.params.extend(_window_options("30d"))
