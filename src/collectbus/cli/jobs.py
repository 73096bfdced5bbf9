"""``collectbus jobs``, ``job``, ``history``, ``nodes`` and ``queues``: stored
scheduler data, as the PBS and Slurm collectors keep it.

Tables show local times and durations; JSON and CSV carry RFC 3339 UTC
times, the stored nanosecond values and durations in seconds. The store is
imported by the command that runs, not with this module.
"""

from __future__ import annotations

import json

import click

from collectbus.cli.context import CliContext, pass_cli
from collectbus.cli.jobformat import (
    collecting,
    duration,
    echo_json,
    nothing,
    span_s,
    time_columns,
    when,
)
from collectbus.cli.output import format_option, render, time_window
from collectbus.errors import CollectBusError
from collectbus.states import JOB_STATES

JOB_TABLE = (
    "cluster",
    "job_id",
    "user",
    "account",
    "queue",
    "state",
    "submitted",
    "wait",
    "runtime",
    "nodes",
    "cpus",
    "exit",
)
JOB_TIMES = {
    "submit_ns": "submitted",
    "eligible_ns": "eligible",
    "start_ns": "started",
    "end_ns": "ended",
    "first_seen_ns": "first_seen",
    "last_seen_ns": "last_seen",
}
HISTORY_TABLE = ("time", "cluster", "job_id", "user", "field", "old_value", "new_value", "note")
HISTORY_HEADERS = {"old_value": "from", "new_value": "to"}
NODE_TABLE = (
    "cluster",
    "node",
    "state",
    "native_state",
    "cpus_allocated",
    "cpus_total",
    "gpus_allocated",
    "gpus_total",
    "jobs",
    "as_of",
)
QUEUE_TABLE = (
    "cluster",
    "queue",
    "enabled",
    "started",
    "jobs_total",
    "jobs_queued",
    "jobs_running",
    "jobs_held",
    "as_of",
)

since_option = click.option(
    "--since",
    default="7d",
    show_default=True,
    metavar="TIME",
    help="Start: 15m, 2h, 7d, an ISO time.",
)
until_option = click.option(
    "--until", default="now", show_default=True, metavar="TIME", help="End of the window."
)
cluster_option = click.option("--cluster", metavar="NAME", help="Only this cluster.")
collect_option = click.option(
    "--collect",
    is_flag=True,
    help="First collect once from the enabled schedulers and store it, as the daemon does.",
)


def _job_row(row: dict[str, object], fmt: str) -> dict[str, object]:
    out = dict(row)
    out["user"] = out.pop("username")
    for column, label in JOB_TIMES.items():
        out[label] = when(row.get(column), fmt)
    wait = span_s(row.get("start_ns"), row.get("submit_ns"))
    run = span_s(row.get("end_ns"), row.get("start_ns"))
    if fmt == "table":
        out["wait"], out["runtime"] = duration(wait), duration(run)
        out["nodes"], out["cpus"] = row.get("nodes_requested"), row.get("cpus_requested")
        out["exit"] = row.get("exit_status")
    else:
        out["wait_queued_s"], out["runtime_s"] = wait, run
    return out


@click.command()
@click.option("-u", "--user", metavar="USER", help="Only this user's jobs.")
@click.option(
    "-s", "--state", type=click.Choice(JOB_STATES), help="Only jobs in this (neutral) state."
)
@click.option("--queue", metavar="QUEUE", help="Only this queue (Slurm: partition).")
@click.option("--account", metavar="NAME", help="Only this account or project.")
@cluster_option
@since_option
@until_option
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    metavar="N",
    help="The N most recently submitted jobs.",
)
@collect_option
@format_option
@pass_cli
def jobs(
    cli: CliContext,
    user: str | None,
    state: str | None,
    queue: str | None,
    account: str | None,
    cluster: str | None,
    since: str,
    until: str,
    limit: int,
    collect: bool,
    fmt: str,
) -> None:
    """Stored jobs: state, wait, runtime, size, exit status.

    Jobs that existed in the window (submitted before --until, seen after
    --since), oldest first; WAIT is start - submit."""
    from collectbus.store.jobquery import read_jobs

    since_ns, until_ns = time_window(since, until)
    with collecting(cli, collect, {"jobs"}):
        store = cli.read_side()
        try:
            with store.reading("read jobs") as conn:
                rows = read_jobs(
                    conn,
                    cluster=cluster,
                    user=user,
                    state=state,
                    queue=queue,
                    account=account,
                    since_ns=since_ns,
                    until_ns=until_ns,
                    limit=limit,
                )
        finally:
            store.close()
        if not rows:
            nothing("jobs", fmt, cli)
        else:
            shown = [_job_row(r, fmt) for r in rows]
            columns = JOB_TABLE if fmt == "table" else _json_job_columns()
            render(shown, fmt, columns=columns)


def _json_job_columns() -> tuple[str, ...]:
    from collectbus.store.jobquery import JOB_FIELDS

    fields = tuple("user" if f == "username" else f for f in JOB_FIELDS)
    return (*fields, *JOB_TIMES.values(), "wait_queued_s", "runtime_s")


@click.command()
@click.argument("job_id")
@cluster_option
@click.option("--raw", is_flag=True, help="Also print the scheduler's raw payload (JSON).")
@click.option(
    "--usage",
    is_flag=True,
    help="What the job used on its nodes against what it asked for: cores and CPU "
    "efficiency, memory peak, I/O, per node, with verdicts (needs the jobusage collector).",
)
@collect_option
@format_option
@pass_cli
def job(
    cli: CliContext,
    job_id: str,
    cluster: str | None,
    raw: bool,
    usage: bool,
    collect: bool,
    fmt: str,
) -> None:
    """One job and its whole history, or with --usage what it used.

    Every change of state, substate, queue, priority, hosts and comment, with
    the time it was seen.

    JOB_ID is the scheduler's id; a PBS id may be given without its server
    (123 for 123.pbs01). An id used again later shows each job it named
    (--usage: the newest).
    """
    if usage and raw:
        raise click.UsageError("--usage and --raw do not go together")
    with collecting(cli, collect, {"jobs"}):
        if usage:
            from collectbus.cli.usagereport import show_usage  # imports pandas

            show_usage(cli, job_id, cluster, fmt)
        else:
            _show_job(cli, job_id, cluster, raw, fmt)


def _show_job(cli: CliContext, job_id: str, cluster: str | None, raw: bool, fmt: str) -> None:
    from collectbus.store.jobquery import read_history, read_jobs

    store = cli.read_side()
    try:
        with store.reading("read jobs") as conn:
            found = read_jobs(conn, job_id=job_id, cluster=cluster, raw=raw)
            if not found:
                found = read_jobs(conn, job_prefix=job_id, cluster=cluster, raw=raw)
            histories = [
                read_history(
                    conn,
                    cluster=str(j["cluster"]),
                    job_id=str(j["job_id"]),
                    submit_ns=int(str(j["submit_ns"])),
                )
                for j in found
            ]
    finally:
        store.close()
    if not found:
        where = f" on cluster {cluster}" if cluster else ""
        raise CollectBusError(
            f"{store.url}: no job {job_id!r}{where}",
            hint="list the stored jobs with: collectbus jobs --since 30d",
        )
    if fmt == "json":
        echo_json(
            [
                {"job": _job_row(j, fmt), "history": time_columns(h, fmt, {"observed_ns": "time"})}
                for j, h in zip(found, histories, strict=True)
            ]
        )
        return
    if fmt == "csv":
        rows = [r for h in histories for r in time_columns(h, fmt, {"observed_ns": "time"})]
        render(rows, fmt, columns=(*HISTORY_TABLE, "submit_ns", "observed_ns"))
        return
    for j, history in zip(found, histories, strict=True):
        details = _job_row(j, fmt)
        payload = details.pop("raw_json", None)
        items = [
            {"field": k, "value": v}
            for k, v in details.items()
            if v not in (None, "") and not k.endswith("_ns")
        ]
        render(items, fmt, columns=("field", "value"), title=f"{j['cluster']} {j['job_id']}")
        render(
            time_columns(history, fmt, {"observed_ns": "time"}),
            fmt,
            columns=("time", "field", "old_value", "new_value", "note"),
            headers=HISTORY_HEADERS,
            title="history",
        )
        if payload is not None:
            click.echo("raw payload, as the scheduler described the job:")
            echo_json(json.loads(str(payload)))


@click.command()
@click.option("-u", "--user", metavar="USER", help="Only this user's jobs.")
@click.option("--job", "job_id", metavar="ID", help="Only this job id.")
@click.option(
    "--field",
    type=click.Choice(("state", "substate", "queue", "priority", "exec_hosts", "comment")),
    help="Only changes of this field.",
)
@cluster_option
@click.option(
    "--since",
    default="1d",
    show_default=True,
    metavar="TIME",
    help="Start: 15m, 2h, 7d, an ISO time.",
)
@until_option
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=200,
    show_default=True,
    metavar="N",
    help="The newest N changes.",
)
@collect_option
@format_option
@pass_cli
def history(
    cli: CliContext,
    user: str | None,
    job_id: str | None,
    field: str | None,
    cluster: str | None,
    since: str,
    until: str,
    limit: int,
    collect: bool,
    fmt: str,
) -> None:
    """Job changes: state, substate, queue, priority, hosts, comment.

    The changes seen in the window, oldest first (the newest --limit)."""
    time_window(since, until)  # a bad window is refused before collecting
    with collecting(cli, collect, {"jobs"}):
        # After the collection: "now" includes the changes it stored.
        since_ns, until_ns = time_window(since, until)
        _show_history(cli, user, job_id, field, cluster, since_ns, until_ns, limit, fmt)


def _show_history(
    cli: CliContext,
    user: str | None,
    job_id: str | None,
    field: str | None,
    cluster: str | None,
    since_ns: int,
    until_ns: int,
    limit: int,
    fmt: str,
) -> None:
    from collectbus.store.jobquery import read_history

    store = cli.read_side()
    try:
        with store.reading("read job_history") as conn:
            rows = read_history(
                conn,
                cluster=cluster,
                job_id=job_id,
                user=user,
                field=field,
                since_ns=since_ns,
                until_ns=until_ns,
                limit=limit,
            )
    finally:
        store.close()
    if not rows:
        nothing("job changes", fmt, cli)
        return
    shown = time_columns(rows, fmt, {"observed_ns": "time"})
    for row in shown:
        row["user"] = row.pop("username")
    columns = (
        HISTORY_TABLE
        if fmt == "table"
        else (*HISTORY_TABLE, "submit_ns", "observed_ns", "queue", "account")
    )
    render(shown, fmt, columns=columns, headers=HISTORY_HEADERS)


@click.command()
@cluster_option
@click.option("-s", "--state", metavar="STATE", help="Only nodes in this state (idle, down, ...).")
@collect_option
@format_option
@pass_cli
def nodes(cli: CliContext, cluster: str | None, state: str | None, collect: bool, fmt: str) -> None:
    """Nodes as last recorded: state, CPUs and GPUs allocated, jobs.

    A node's row is stored when it changes, and at least hourly: AS_OF is
    the time of that row."""
    from collectbus.store.jobquery import latest_nodes

    with collecting(cli, collect, {"nodes"}):
        store = cli.read_side()
        try:
            with store.reading("read node_snapshots") as conn:
                rows = latest_nodes(conn, cluster=cluster)
        finally:
            store.close()
        rows = [r for r in rows if state is None or r["state"] == state]
        if not rows:
            nothing("nodes", fmt, cli, window=False)
        else:
            shown = time_columns(rows, fmt, {"observed_ns": "as_of"})
            if fmt == "table":
                for row in shown:
                    jobs_text = row.get("jobs")
                    row["jobs"] = len(str(jobs_text).split(",")) if jobs_text else 0
            render(shown, fmt, columns=NODE_TABLE if fmt == "table" else None)


@click.command()
@cluster_option
@collect_option
@format_option
@pass_cli
def queues(cli: CliContext, cluster: str | None, collect: bool, fmt: str) -> None:
    """Queues (Slurm: partitions) as last recorded, with job counts."""
    from collectbus.store.jobquery import latest_queues

    with collecting(cli, collect, {"queues", "partitions"}):
        store = cli.read_side()
        try:
            with store.reading("read queue_snapshots") as conn:
                rows = latest_queues(conn, cluster=cluster)
        finally:
            store.close()
        if not rows:
            nothing("queues", fmt, cli, window=False)
        else:
            shown = time_columns(rows, fmt, {"observed_ns": "as_of"})
            render(shown, fmt, columns=QUEUE_TABLE if fmt == "table" else None)
