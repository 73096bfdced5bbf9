"""``collectbus collect slurm``: run the Slurm commands for one entity now and print them.

Reads ``[collectors.slurm]`` (whether or not it is enabled), as ``collect pbs``
reads ``[collectors.pbs]``, so that a configuration can be checked before the
daemon uses it. Nothing is stored; what the collection noted goes to standard
error.
"""

from __future__ import annotations

import click

from collectbus.cli.context import CliContext, pass_cli
from collectbus.cli.pbs import scheduler_format_option, show_collection
from collectbus.pipeline import slurm_settings
from collectbus.plugins import load_collector

ENTITIES = ("jobs", "nodes", "partitions", "reservations")


@click.command("slurm")
@click.argument("entity", type=click.Choice(ENTITIES), default="jobs")
@scheduler_format_option
@pass_cli
def collect_slurm(cli: CliContext, entity: str, fmt: str) -> None:
    """Run the Slurm commands for ENTITY now and print what they list.

    ENTITY is jobs (the default), nodes, partitions or reservations.
    """
    config = cli.config()
    collector = load_collector(f"slurm-{entity}")(slurm_settings(config.collectors.slurm))
    show_collection(collector, config.host, f"slurm {entity}", fmt)
