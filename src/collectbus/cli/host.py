"""``collectbus host``: stored host samples as rates."""

from __future__ import annotations

import math

import click

from collectbus.cli.context import CliContext, pass_cli
from collectbus.cli.output import format_option, iso, iso_utc, render, time_window

#: Columns shown, in order; the JSON and CSV outputs carry raw numbers.
COLUMNS = (
    "time",
    "host",
    "cpu_percent",
    "mem_used_bytes",
    "mem_available_bytes",
    "disk_read_bytes_per_s",
    "disk_write_bytes_per_s",
    "net_rx_bytes_per_s",
    "net_tx_bytes_per_s",
    "load1",
)

#: Short titles for the table, in the manner of sar and vmstat.
HEADERS = {
    "cpu_percent": "cpu %",
    "mem_used_bytes": "mem used",
    "mem_available_bytes": "mem avail",
    "disk_read_bytes_per_s": "disk read",
    "disk_write_bytes_per_s": "disk write",
    "net_rx_bytes_per_s": "net rx",
    "net_tx_bytes_per_s": "net tx",
}


def _human_bytes(value: object, per_s: bool) -> object:
    if not isinstance(value, int | float) or (isinstance(value, float) and math.isnan(value)):
        return value
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            text = f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
            return text + ("/s" if per_s else "")
        size /= 1024
    return value


@click.command()
@click.option(
    "--since", default="1h", show_default=True, metavar="TIME", help="Start: 15m, 2h, an ISO time."
)
@click.option(
    "--until", default="now", show_default=True, metavar="TIME", help="End of the window."
)
@click.option("--host", "host_name", metavar="NAME", help="Only this host.")
@format_option
@pass_cli
def host(cli: CliContext, since: str, until: str, host_name: str | None, fmt: str) -> None:
    """CPU %, memory, disk and network bytes/s and load, from stored samples.

    Rates are computed between consecutive samples of a host; the first sample
    of a host (or of a boot) has none.
    """
    from collectbus.analysis.host import rates

    since_ns, until_ns = time_window(since, until)
    store = cli.read_store()
    try:
        frame = rates(store, host=host_name, since_ns=since_ns, until_ns=until_ns)
    finally:
        store.close()
    if frame.empty:
        click.echo(
            "no host samples in this window; collect some with: collectbus run --duration 30s",
            err=True,
        )
        if fmt == "json":
            click.echo("[]")
        return
    rows: list[dict[str, object]] = []
    for rec in frame.to_dict("records"):
        row: dict[str, object] = {str(k): v for k, v in rec.items()}
        time_ns = int(rec["time_ns"])
        row["time_ns"] = time_ns
        for col in frame.columns:
            value = row[str(col)]
            if str(col).endswith("_bytes") and isinstance(value, float) and not math.isnan(value):
                row[str(col)] = int(value)  # sizes are whole bytes; NaN made the column float
        if fmt == "table":
            row["time"] = iso(time_ns)
            for col in COLUMNS:
                if col.endswith("_bytes"):
                    row[col] = _human_bytes(row.get(col), per_s=False)
                elif col.endswith("_per_s"):
                    row[col] = _human_bytes(row.get(col), per_s=True)
        else:
            row["time"] = iso_utc(time_ns)
        rows.append(row)
    columns = COLUMNS if fmt == "table" else ("time", *frame.columns)
    render(rows, fmt, columns=columns, headers=HEADERS)
