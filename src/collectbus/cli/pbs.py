"""``collectbus collect pbs``: run one PBS command now and print what it gave.

Reads the ``[collectors.pbs]`` section (whether or not it is enabled), so a
configuration can be checked on a login node before the daemon uses it.
Nothing is stored. What the collection noted (the server, whether the job
listing was complete, what was repaired) goes to standard error.
"""

from __future__ import annotations

import click

from collectbus import codec
from collectbus.cli.context import CliContext, pass_cli
from collectbus.cli.output import iso, render
from collectbus.collectors.base import CollectContext, close_collector
from collectbus.plugins import load_collector
from collectbus.records import JobRecord, NodeRecord, QueueRecord, Record, SystemRecord

ENTITIES = ("jobs", "nodes", "queues", "server")


@click.command("pbs")
@click.argument("entity", type=click.Choice(ENTITIES), default="jobs")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="json: one record per line, every field",
)
@pass_cli
def collect_pbs(cli: CliContext, entity: str, fmt: str) -> None:
    """Run the PBS command for ENTITY (jobs, nodes, queues, server) once and print it."""
    config = cli.config()
    collector = load_collector(f"pbs-{entity}")(**config.collectors.pbs.settings())
    ctx = CollectContext(host=config.host)
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
    render([_row(r) for r in records], "table", title=f"pbs {entity}: {len(records)}")


def _row(record: Record) -> dict[str, object]:
    if isinstance(record, JobRecord):
        return {
            "job_id": record.job_id,
            "state": record.state,
            "pbs": f"{record.native_state}/{record.substate or ''}",
            "user": record.user,
            "queue": record.queue,
            "submitted": iso(record.submit_ns),
            "started": iso(record.start_ns),
            "ended": iso(record.end_ns),
            "exit": record.exit_status,
            "hosts": len(record.exec_hosts) or None,
        }
    if isinstance(record, NodeRecord):
        return {
            "node": record.node,
            "state": record.state,
            "pbs": record.native_state,
            "cpus": record.cpus_total,
            "cpus used": record.cpus_allocated,
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
    if isinstance(record, SystemRecord):
        return {"server": record.server, "state": record.server_state, "jobs": record.jobs_total}
    return {"record": type(record).__name__}
