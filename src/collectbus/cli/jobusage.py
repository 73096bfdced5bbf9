"""``collectbus collect jobusage``: what each batch job on this node uses, now.

Reads ``[collectors.jobusage]`` (whether or not it is enabled), with procfs
from the global ``--proc-root`` and the cgroup mount from ``--cgroup-root``,
so that a recorded tree can be replayed. Nothing is stored; what the
collection noted goes to standard error.
"""

from __future__ import annotations

import dataclasses

import click

from collectbus import codec
from collectbus.cli.context import CliContext, pass_cli
from collectbus.cli.output import render
from collectbus.cli.pbs import scheduler_format_option
from collectbus.collectors.base import CollectContext, close_collector
from collectbus.plugins import load_collector
from collectbus.records import JobUsageSample


@click.command("jobusage")
@click.option(
    "--cgroup-root",
    metavar="DIR",
    help="Where the cgroup hierarchies are mounted (default: the config's, /sys/fs/cgroup).",
)
@click.option("--cluster", help="The cluster name the samples carry (default: the config's).")
@click.option(
    "--mode",
    type=click.Choice(["auto", "cgroup", "proctree"]),
    help="auto: each job from its cgroup, else from its processes (default: the config's).",
)
@scheduler_format_option
@pass_cli
def collect_jobusage(
    cli: CliContext, cgroup_root: str | None, cluster: str | None, mode: str | None, fmt: str
) -> None:
    """Read the usage of each batch job on this node once and print it.

    \b
    One row per job: from its cgroup (Slurm, PBS cgroups hook) or, without
    one, summed over its processes (source cgroup or proctree).
    --format json: one JobUsageSample per line, every field.
    """
    config = cli.config()
    section = config.collectors.jobusage
    name = cluster or section.cluster
    if not name:
        raise click.UsageError("name the cluster: --cluster NAME, or [collectors.jobusage] cluster")
    collector = load_collector("jobusage")(
        name,
        proc_root=config.collectors.host.proc_root,
        cgroup_root=cgroup_root or section.cgroup_root,
        mode=mode or section.mode,
    )
    ctx = CollectContext(host=config.host)
    try:
        records = [r for r in collector.collect(ctx) if isinstance(r, JobUsageSample)]
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
    rows = [
        {k: v for k, v in dataclasses.asdict(r).items() if k not in ("cluster", "host", "time_ns")}
        for r in records
    ]
    heading = f"job usage on {config.host}: {len(records)} jobs" if fmt == "table" else None
    render(rows, fmt, title=heading)
