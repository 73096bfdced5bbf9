"""``collectbus collect pbs``: run one PBS command now and print what it gave.

Reads the ``[collectors.pbs]`` section (whether or not it is enabled), so a
configuration can be checked on a login node before the daemon uses it.
Nothing is stored. What the collection noted (the server, whether the job
listing was complete, what was repaired) goes to standard error.
"""

from __future__ import annotations

from collections.abc import Callable

import click

from collectbus import codec
from collectbus.cli.context import CliContext, pass_cli
from collectbus.cli.output import format_options, render, when
from collectbus.collectors.base import CollectContext, Collector, close_collector
from collectbus.plugins import load_collector
from collectbus.records import (
    JobRecord,
    NodeRecord,
    QueueRecord,
    Record,
    ReservationRecord,
    SystemRecord,
)

ENTITIES = ("jobs", "nodes", "queues", "server", "reservations")


#: --format for a one-shot scheduler collection.
scheduler_format_option = format_options(
    "json: one record per line (NDJSON), every field; csv: the table's columns, raw values."
)


@click.command("pbs")
@click.argument("entity", type=click.Choice(ENTITIES), default="jobs")
@scheduler_format_option
@pass_cli
def collect_pbs(cli: CliContext, entity: str, fmt: str) -> None:
    """Run one PBS command for ENTITY now and print what it lists.

    ENTITY is jobs (the default), nodes, queues, server or reservations.
    """
    config = cli.config()
    collector = load_collector(f"pbs-{entity}")(**config.collectors.pbs.settings())
    show_collection(collector, config.host, f"pbs {entity}", fmt)


def show_collection(
    collector: Collector,
    host: str,
    title: str,
    fmt: str,
    row: Callable[[Record, str], dict[str, object]] | None = None,
) -> None:
    """Run ``collector`` once and print its records; its notes go to standard error.

    ``row`` makes a table row of a record (default: the scheduler records').
    """
    ctx = CollectContext(host=host)
    try:
        records = list(collector.collect(ctx))
    finally:
        close_collector(collector)
    for key, value in ctx.details:
        click.echo(f"collectbus: {key}: {value}", err=True)
    for problem in ctx.problems:
        click.echo(f"collectbus: warning: {problem}", err=True)
    if fmt == "json":
        for record in records:
            click.echo(codec.dumps_json(record))
        return
    rows = [(row or _row)(r, fmt) for r in records]
    heading = f"{title}: {len(records)}" if fmt == "table" else None
    render(rows, fmt, title=heading, headers={"cpus_used": "cpus used"})


def _row(record: Record, fmt: str) -> dict[str, object]:
    scheduler = getattr(record, "scheduler", "pbs")
    if isinstance(record, JobRecord):
        return {
            "job_id": record.job_id,
            "state": record.state,
            scheduler: (
                f"{record.native_state}/{record.substate}"
                if record.substate
                else record.native_state
            ),
            "user": record.user,
            "queue": record.queue,
            "submitted": when(record.submit_ns, fmt),
            "started": when(record.start_ns, fmt),
            "ended": when(record.end_ns, fmt),
            "exit": record.exit_status,
            "hosts": len(record.exec_hosts) or None,
        }
    if isinstance(record, NodeRecord):
        return {
            "node": record.node,
            "state": record.state,
            scheduler: record.native_state,
            "cpus": record.cpus_total,
            "cpus_used": record.cpus_allocated,
            "gpus": record.gpus_total,
            "mem": record.mem_total_bytes,
            "jobs": len(record.jobs),
        }
    if isinstance(record, QueueRecord):
        return {
            "queue": record.queue,
            "enabled": record.enabled,
            "started": record.started,
            "jobs": record.jobs_total,
            "queued": record.jobs_queued,
            "running": record.jobs_running,
            "held": record.jobs_held,
        }
    if isinstance(record, ReservationRecord):
        return {
            "reservation": record.resv_id,
            "name": record.name,
            "state": record.state,
            scheduler: record.native_state,
            "start": when(record.start_ns, fmt),
            "end": when(record.end_ns, fmt),
            "nodes": len(record.nodes) or record.nodes_requested,
            "queue": record.queue,
        }
    if isinstance(record, SystemRecord):
        return {"server": record.server, "state": record.server_state, "jobs": record.jobs_total}
    return {"record": type(record).__name__}
