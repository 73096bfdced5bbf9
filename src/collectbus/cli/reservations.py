"""``collectbus reservations``: stored advance reservations (PBS ``pbs_rstat``,
Slurm ``scontrol show reservation``), or with ``--history`` their changes.

Tables show local times and durations; JSON and CSV carry RFC 3339 UTC
times, the stored nanosecond values and durations in seconds. The store is
imported by the command that runs, not with this module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from collectbus.cli.context import CliContext, pass_cli
from collectbus.cli.jobformat import duration, nothing, when
from collectbus.cli.jobs import cluster_option, collect_option, since_option, until_option
from collectbus.cli.output import format_option, render, time_window
from collectbus.states import RESERVATION_STATES

if TYPE_CHECKING:
    from collectbus.cli.collectnow import Outcome

TABLE = (
    "cluster",
    "resv_id",
    "name",
    "state",
    "owner",
    "queue",
    "start",
    "end",
    "duration",
    "nodes",
    "users",
)
TIMES = {
    "created_ns": "created",
    "start_ns": "start",
    "end_ns": "end",
    "modified_ns": "modified",
    "first_seen_ns": "first_seen",
    "last_seen_ns": "last_seen",
}
HISTORY_TABLE = ("time", "cluster", "resv_id", "field", "old_value", "new_value", "note")
#: History fields holding nanosecond times, shown as times.
_TIME_FIELDS = ("start_ns", "end_ns")


def _row(row: dict[str, object], fmt: str) -> dict[str, object]:
    out = dict(row)
    for column, label in TIMES.items():
        out[label] = when(row.get(column), fmt)
    if fmt == "table":
        seconds = row.get("duration_seconds")
        out["duration"] = duration(seconds if isinstance(seconds, int) else None)
    return out


def _history_row(row: dict[str, object], fmt: str) -> dict[str, object]:
    out = dict(row)
    out["time"] = when(row.get("observed_ns"), fmt)
    if row.get("field") in _TIME_FIELDS:
        for key in ("old_value", "new_value"):
            value = row.get(key)
            if isinstance(value, str) and value.lstrip("-").isdigit():
                out[key] = when(int(value), fmt)
    return out


@click.command()
@click.option(
    "-s",
    "--state",
    type=click.Choice(RESERVATION_STATES),
    help="Only reservations in this (neutral) state.",
)
@cluster_option
@since_option
@until_option
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    metavar="N",
    help="The N reservations that start last.",
)
@click.option("--history", is_flag=True, help="Show each change (state, times, nodes) instead.")
@collect_option
@format_option
@pass_cli
def reservations(
    cli: CliContext,
    state: str | None,
    cluster: str | None,
    since: str,
    until: str,
    limit: int,
    history: bool,
    collect: bool,
    fmt: str,
) -> None:
    """Stored reservations: state, start, end, nodes, users.

    Reservations seen in the window (first seen before --until, last seen
    after --since), by start time; with --history, the changes observed in
    the window, oldest first."""
    from collectbus.store.reservations import (
        RESERVATION_FIELDS,
        read_reservation_history,
        read_reservations,
    )

    since_ns, until_ns = time_window(since, until)
    outcome: Outcome | None = None
    if collect:
        from collectbus.cli.collectnow import collect_now

        outcome = collect_now(cli, {"reservations"})
        # "now" is after the collection: what it found was first seen then.
        since_ns, until_ns = time_window(since, until)
    store = cli.read_store()
    try:
        with store.reservations.reading() as conn:
            if history:
                rows = read_reservation_history(
                    conn, cluster=cluster, since_ns=since_ns, until_ns=until_ns
                )
                if state is not None:
                    rows = [r for r in rows if r["field"] == "state" and r["new_value"] == state]
            else:
                rows = read_reservations(
                    conn,
                    cluster=cluster,
                    state=state,
                    since_ns=since_ns,
                    until_ns=until_ns,
                    limit=limit,
                )
    finally:
        store.close()
    if not rows:
        nothing("reservation changes" if history else "reservations", fmt, cli)
    elif history:
        columns: tuple[str, ...] = HISTORY_TABLE
        if fmt != "table":
            columns = (*HISTORY_TABLE[:3], "created_ns", "observed_ns", *HISTORY_TABLE[3:])
        render(
            [_history_row(r, fmt) for r in rows],
            fmt,
            columns=columns,
            headers={"old_value": "from", "new_value": "to"} if fmt == "table" else None,
        )
    else:
        columns = TABLE if fmt == "table" else (*RESERVATION_FIELDS, *TIMES.values())
        render([_row(r, fmt) for r in rows], fmt, columns=columns)
    if outcome is not None:
        outcome.finish()
