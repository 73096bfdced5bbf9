"""``collectbus collect jobusage``: what each batch job on this node uses, now.

Reads ``[collectors.jobusage]`` (whether or not it is enabled), with procfs
from the global ``--proc-root`` and the cgroup mount from ``--cgroup-root``,
so that a recorded tree can be replayed. Nothing is stored; what the
collection noted goes to standard error.
"""

from __future__ import annotations

import dataclasses

import click

from collectbus.cli.context import CliContext, pass_cli
from collectbus.cli.pbs import scheduler_format_option, show_collection
from collectbus.plugins import load_collector
from collectbus.records import JobUsageSample, Record


@click.command("jobusage")
@click.option(
    "--cgroup-root",
    metavar="DIR",
    help="Where the cgroup hierarchies are mounted (default: the config's, /sys/fs/cgroup).",
)
@click.option(
    "--cluster", metavar="NAME", help="The cluster name the samples carry (default: the config's)."
)
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
    show_collection(collector, config.host, f"job usage on {config.host}", fmt, _row)


def _row(record: Record, _fmt: str) -> dict[str, object]:
    """A job's usage as a table row (the cluster, host and time are the collection's)."""
    if not isinstance(record, JobUsageSample):
        return {"record": type(record).__name__}
    skip = ("cluster", "host", "time_ns")
    return {k: v for k, v in dataclasses.asdict(record).items() if k not in skip}
