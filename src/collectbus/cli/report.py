"""``collectbus report``: one self-contained HTML page of host metrics over time.

From a result file of ``collectbus record`` (or MLCommons storage's
``TimeSeriesData``), or from the store (``--since``/``--until``/``--host``);
from the store, the batch jobs of the window are charted too (jobs queued
per queue, queued waits per queue; ``--cluster`` for one cluster).
"""

from __future__ import annotations

import math
from pathlib import Path

import click
import pandas as pd

from collectbus.cli.context import CliContext, pass_cli
from collectbus.cli.output import time_window
from collectbus.errors import RecordError
from collectbus.recording.mlcommons import is_error_sample
from collectbus.recording.timeseries import TimeSeriesData, hosts_in_order, load
from collectbus.report.html import CHARTS, HostSummary, JobCharts, ReportData, render

_FAILED = frozenset({"error", "timeout"})


@click.command()
@click.argument("result", required=False, metavar="[RESULT.json]")
@click.option("--since", metavar="TIME", help="From the store: start (15m, 2h, an ISO time).")
@click.option(
    "--until", default="now", show_default=True, metavar="TIME", help="End of the window."
)
@click.option("--host", "host_name", metavar="NAME", help="Only this host.")
@click.option("--cluster", metavar="NAME", help="From the store: only this cluster's jobs.")
@click.option(
    "--html",
    "html_path",
    required=True,
    metavar="OUT.html",
    type=click.Path(dir_okay=False),
    help="Where to write the page.",
)
@click.option("--title", metavar="TITLE", help="Page title (default: from the source).")
@pass_cli
def report(
    cli: CliContext,
    result: str | None,
    since: str | None,
    until: str,
    host_name: str | None,
    cluster: str | None,
    html_path: str,
    title: str | None,
) -> None:
    """Write an HTML page with CPU, memory, disk and network charts per host.

    From the store, the page also charts the batch jobs of the window (PBS,
    Slurm): jobs queued per queue over time, and the queued wait per queue.

    \b
    Examples:
      collectbus report timeseries-20261129T101500.000Z.json --html report.html
      collectbus report --since 2h --host node1 --html node1.html
      collectbus report --since 7d --cluster aurora --html jobs.html
    """
    if (result is None) == (since is None):
        raise click.UsageError("give a RESULT.json file, or --since for the store (not both)")
    if result is not None and cluster is not None:
        raise click.UsageError("--cluster charts the stored jobs: give it with --since")
    out = Path(html_path)
    if not out.parent.is_dir():
        # As cp does: the folder must exist; a typo in it must not become a new tree.
        raise RecordError(f"{out}: cannot write the report: no folder {str(out.parent)!r}")
    if result is not None:
        data = load(result)
        page = _from_recording(data, result, host_name, title)
    else:
        assert since is not None
        page = _from_store(cli, since, until, host_name, cluster, title)
    try:
        out.write_text(render(page), encoding="utf-8")
    except OSError as err:
        raise RecordError(f"{out}: cannot write the report: {err.strerror or err}") from err
    click.echo(f"collectbus: report: {out}", err=True)


def _series(
    frame: pd.DataFrame, hosts: tuple[str, ...], start_ns: int
) -> dict[str, dict[str, tuple[list[float], list[float]]]]:
    out: dict[str, dict[str, tuple[list[float], list[float]]]] = {}
    for chart in CHARTS:
        per_host: dict[str, tuple[list[float], list[float]]] = {}
        for host in hosts:
            rows = frame[frame["host"] == host]
            xs = [(int(t) - start_ns) / 1e9 for t in rows["time_ns"]]
            ys = [float(v) for v in rows[chart.column].to_numpy(dtype=float, na_value=math.nan)]
            per_host[host] = (xs, ys)
        out[chart.column] = per_host
    return out


def _from_recording(
    data: TimeSeriesData, source: str, host: str | None, title: str | None
) -> ReportData:
    from collectbus.analysis.recording import recording_rates

    hosts = tuple(hosts_in_order(data))
    if host is not None:
        if host not in hosts:
            raise RecordError(f"{source}: no host {host!r}; hosts: {', '.join(hosts)}")
        hosts = (host,)
    frame = recording_rates(data, host=host)
    summaries = {
        h: HostSummary(
            samples=len(data.good_samples(h)),
            failed_rounds=data.errors_by_host[h].count if h in data.errors_by_host else 0,
            last_error=data.errors_by_host[h].last if h in data.errors_by_host else None,
            dropped=data.dropped_by_host.get(h, 0),
        )
        for h in hosts
    }
    failures = {
        h: [
            (s.time_ns - data.start_time_ns) / 1e9
            for s in data.samples_by_host.get(h, ())
            if is_error_sample(s)
        ]
        for h in hosts
    }
    return ReportData(
        title=title or f"Host metrics: {', '.join(hosts)}",
        source=Path(source).name,
        failures=failures,
        start_ns=data.start_time_ns,
        end_ns=data.end_time_ns,
        hosts=hosts,
        series=_series(frame, hosts, data.start_time_ns),
        summaries=summaries,
        interval_s=data.collection_interval_seconds,
        command=data.command,
        exit_code=data.exit_code,
    )


def _from_store(
    cli: CliContext,
    since: str,
    until: str,
    host: str | None,
    cluster: str | None,
    title: str | None,
) -> ReportData:
    from collectbus.analysis.host import rates
    from collectbus.analysis.jobcharts import job_chart_data

    since_ns, until_ns = time_window(since, until)
    store = cli.read_store()
    try:
        frame = rates(store, host=host, since_ns=since_ns, until_ns=until_ns)
        log = store.collection_log(since_ns=since_ns)
        charts = job_chart_data(store, since_ns=since_ns, until_ns=until_ns, cluster=cluster)
        url = store.url
    finally:
        store.close()
    if frame.empty and charts.empty:
        raise RecordError(
            f"{url}: no host samples and no jobs in this window",
            hint="widen --since, or record some: collectbus record -- CMD",
        )
    jobs = None
    if not charts.empty:
        jobs = JobCharts(
            start_ns=since_ns,
            end_ns=until_ns,
            queued={
                q: ([(t - since_ns) / 1e9 for t in charts.times_ns], [float(v) for v in counts])
                for q, counts in charts.queued.items()
            },
            waits=charts.waits,
        )
    if frame.empty:
        what = f"Batch jobs: {cluster}" if cluster else "Batch jobs"
        return ReportData(
            title=title or what,
            source=url,
            start_ns=since_ns,
            end_ns=until_ns,
            hosts=(),
            series={},
            jobs=jobs,
        )
    hosts = tuple(dict.fromkeys(str(h) for h in frame["host"]))
    start_ns = int(frame["time_ns"].min())
    end_ns = int(frame["time_ns"].max())
    summaries = {}
    failures = {}
    for h in hosts:
        failed = [
            row
            for row in log
            if row["host"] == h
            and row["status"] in _FAILED
            and int(str(row["started_ns"])) < until_ns
        ]
        failures[h] = [(int(str(row["started_ns"])) - start_ns) / 1e9 for row in failed]
        summaries[h] = HostSummary(
            samples=int((frame["host"] == h).sum()),
            failed_rounds=len(failed),
            last_error=str(failed[-1]["error"]) if failed else None,
        )
    return ReportData(
        title=title or f"Host metrics: {', '.join(hosts)}",
        source=url,
        start_ns=start_ns,
        end_ns=end_ns,
        hosts=hosts,
        series=_series(frame, hosts, start_ns),
        summaries=summaries,
        failures=failures,
        jobs=jobs,
    )
