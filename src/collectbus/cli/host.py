"""``collectbus host``: stored host samples as rates, by family; ``host inventory``."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, cast

import click

from collectbus.cli.context import CliContext, pass_cli
from collectbus.cli.output import (
    duration_option,
    format_option,
    iso,
    iso_utc,
    json_array,
    render,
    time_window,
)
from collectbus.errors import ConfigError

if TYPE_CHECKING:
    from collectbus.store import Store
    from collectbus.store.reader import StoreReader

#: One family's rows (dicts) and their columns.
Family = tuple[list[dict[str, object]], list[str]]

#: Columns of the summary table, in order; the JSON and CSV outputs carry raw numbers.
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


#: The psi table: one row per host, time and resource (24 columns across would not fit).
PSI_TABLE = (
    "time",
    "host",
    "resource",
    "some_percent",
    "full_percent",
    "some_avg10",
    "some_avg60",
    "some_avg300",
    "full_avg10",
    "full_avg60",
    "full_avg300",
)
PSI_HEADERS = {
    "some_percent": "some %",
    "full_percent": "full %",
    **{f"{k}_avg{n}": f"{k} {n}s" for k in ("some", "full") for n in (10, 60, 300)},
}
PSI_RESOURCES = ("cpu", "io", "memory")


def psi_by_resource(rows: Sequence[Mapping[str, object]]) -> list[dict[str, object]]:
    """The psi family's wide rows (psi_cpu_some_avg10, ...) as one row per resource."""
    out: list[dict[str, object]] = []
    for row in rows:
        for resource in PSI_RESOURCES:
            prefix = f"psi_{resource}_"
            values = {c[len(prefix) :]: v for c, v in row.items() if c.startswith(prefix)}
            if any(v is not None and not (isinstance(v, float) and math.isnan(v))
                   for v in values.values()):  # fmt: skip
                out.append({"time": row["time"], "host": row["host"], "resource": resource,
                            **values})  # fmt: skip
    return out


#: Titles as iostat -x and uptime print them.
_AS_IOSTAT = {"r_s": "r/s", "w_s": "w/s", "aqu_sz": "aqu-sz", "boot_time_s": "booted"}


def family_headers(columns: Sequence[str]) -> dict[str, str]:
    """Short table titles for a family's columns (cpu_user_percent: user %); the
    values say their unit (2.0 MiB/s), so the titles need not."""
    headers: dict[str, str] = {}
    for column in columns:
        if column in _AS_IOSTAT:
            headers[column] = _AS_IOSTAT[column]
            continue
        title = column.removeprefix("cpu_") if column != "cpu_percent" else "cpu %"
        for suffix, short in (
            ("_bytes_per_s", ""),
            ("_per_s", "/s"),
            ("_percent", " %"),
            ("_bytes", ""),
        ):
            if title.endswith(suffix):
                title = title.removesuffix(suffix) + short
                break
        headers[column] = title.replace("_", " ")
    return headers


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


def _metrics(value: str) -> list[str]:
    from collectbus.analysis.summary import FAMILY_NAMES

    names = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [n for n in names if n not in FAMILY_NAMES]
    if unknown or not names:
        known = ", ".join(FAMILY_NAMES)
        raise click.BadParameter(f"unknown family {', '.join(unknown) or value!r} (known: {known})")
    return names


@click.group(invoke_without_command=True)
@click.option(
    "--since", default="1h", show_default=True, metavar="TIME", help="Start: 15m, 2h, an ISO time."
)
@click.option(
    "--until", default="now", show_default=True, metavar="TIME", help="End of the window."
)
@click.option("--host", "host_name", metavar="NAME", help="Only this host.")
@click.option(
    "--metric",
    default="summary",
    show_default=True,
    metavar="FAMILIES",
    help="Comma-separated: summary, cpu, percpu, disk, net, mem, psi, cgroup, uptime, load.",
)
@click.option(
    "--every",
    callback=duration_option,
    metavar="TIME",
    help="Average the rates per bucket of TIME (1m, 5m): one row per host, device and bucket.",
)
@format_option
@click.pass_context
def host(
    ctx: click.Context,
    since: str,
    until: str,
    host_name: str | None,
    metric: str,
    every: float | None,
    fmt: str,
) -> None:
    """Host rates from stored samples: CPU, disks (iostat -x), network, memory, PSI, cgroup.

    Rates are computed between consecutive samples of a host; the first sample
    of a host (or of a boot) has none.

    \b
    Examples:
      collectbus host --since 10m                       the summary
      collectbus host --metric disk --every 1m          iostat -x per disk, per minute
      collectbus host --metric cpu,mem --format json    two families, one JSON array
      collectbus host inventory                         CPUs, OS, disks, NICs of each host

    --format json is always one array of rows, each with "metric" (its family:
    summary, cpu, mem, ...), "time" (RFC 3339 UTC), "time_ns", "host" and the
    family's columns (src/collectbus/cli/schemas/host.json). --format csv takes
    one family: the same columns, without "metric".
    """
    if ctx.invoked_subcommand is not None:
        return
    cli: CliContext = ctx.find_object(CliContext)  # type: ignore[assignment]
    names = _metrics(metric)
    if fmt == "csv" and len(names) > 1:
        raise ConfigError("--format csv takes one --metric family", hint="run once per family")
    since_ns, until_ns = time_window(since, until)
    frames, why = _read(cli, names, every, host_name, since_ns, until_ns)
    if why is not None:
        message, hint = why
        click.echo(f"collectbus: {message}", err=True)
        click.echo(f"  hint: {hint}", err=True)
        if fmt == "json":
            click.echo("[]")
        return
    if fmt == "json":
        # One shape whatever --metric says: an array of rows, each naming its family.
        click.echo(json_array([r for n, f in frames.items() for r in _json_rows(n, *f)]))
        return
    for name, (records, names_of_columns) in frames.items():
        rows = _rows(records, names_of_columns, fmt)
        if fmt == "table" and name == "summary":
            render(rows, fmt, columns=COLUMNS, headers=HEADERS)
        elif fmt == "table" and name == "psi":
            render(psi_by_resource(rows), fmt, columns=PSI_TABLE, title=name, headers=PSI_HEADERS)
        elif fmt == "table":
            columns = ["time", *(c for c in names_of_columns if c != "time_ns")]
            render(rows, fmt, columns=columns, title=name, headers=family_headers(columns))
        else:
            render(rows, fmt, columns=("time", *names_of_columns))


#: Why a family can be empty while its host has samples.
_EMPTY_FAMILY = {
    "cgroup": "cgroup values are read inside a container, or always with"
    ' [collectors.host] cgroup = "on"; this host\'s collector read none',
    "psi": "this kernel has no /proc/pressure (PSI is off: psi=1 on the kernel command line)",
}


def _why_empty(
    store: StoreReader, names: list[str], host_name: str | None, since_ns: int, until_ns: int
) -> tuple[str, str]:
    """What to tell a user who got no rows: an unknown host, no samples at
    all in the window, or a family this host does not have."""
    known = store.hosts()
    if host_name is not None and host_name not in {h["name"] for h in known}:
        listed = ", ".join(str(h["name"]) for h in known) or "none yet"
        return f"no host {host_name!r} in {store.url}", f"hosts stored: {listed}"
    active = [
        h
        for h in known
        if (host_name is None or h["name"] == host_name)
        and int(str(h["last_seen_ns"])) >= since_ns
        and int(str(h["first_seen_ns"])) <= until_ns
    ]
    if not active:
        return (
            "no host samples in this window",
            "widen --since, or collect some: collectbus run --duration 30s",
        )
    family = ", ".join(names)
    reasons = [_EMPTY_FAMILY[n] for n in names if n in _EMPTY_FAMILY]
    return (
        f"no {family} values in this window, though the host has samples",
        "; ".join(reasons) or "the host collector reported none (see collectbus db status)",
    )


def _read(
    cli: CliContext,
    names: list[str],
    every: float | None,
    host_name: str | None,
    since_ns: int,
    until_ns: int,
) -> tuple[dict[str, Family], tuple[str, str] | None]:
    """The families asked for, and why there are no rows (None if there are some)."""
    if names == ["summary"] and every is None:
        # The summary alone, in plain Python: no NumPy or pandas to import; and
        # the store's read side alone: none of its writers, no table built.
        from collectbus.analysis.summary import RATE_COLUMNS, store_summary

        with cli.read_side() as reader:
            rows = store_summary(reader, host=host_name, since_ns=since_ns, until_ns=until_ns)
            frames = {"summary": (rows, ["host", "time_ns", *RATE_COLUMNS])}
            return frames, None if rows else _why_empty(
                reader, names, host_name, since_ns, until_ns
            )
    with cli.read_store() as store:
        frames = _families(store, names, every, host_name, since_ns, until_ns)
        empty = not any(rows for rows, _columns in frames.values())
        return frames, _why_empty(store, names, host_name, since_ns, until_ns) if empty else None


def _families(
    store: Store,
    names: list[str],
    every: float | None,
    host_name: str | None,
    since_ns: int,
    until_ns: int,
) -> dict[str, Family]:
    """The families as pandas computes them (:mod:`collectbus.analysis.views`)."""
    from collectbus.analysis.families import store_tables
    from collectbus.analysis.views import FAMILIES, downsample, family

    tables = store_tables(store, host=host_name, since_ns=since_ns, until_ns=until_ns)
    frames: dict[str, Family] = {}
    for name in names:
        frame = family(tables, name)
        if every is not None:
            frame = downsample(frame, every, FAMILIES[name][1])
        records = [{str(k): v for k, v in r.items()} for r in frame.to_dict("records")]
        frames[name] = (records, [str(c) for c in frame.columns])
    return frames


def _rows(
    records: Sequence[Mapping[str, object]], columns: Sequence[str], fmt: str
) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for rec in records:
        row: dict[str, object] = dict(rec)
        time_ns = int(cast(float, rec["time_ns"]))
        row["time_ns"] = time_ns
        for col in columns:
            value = row[col]
            if col.endswith("_bytes") and isinstance(value, float) and not math.isnan(value):
                row[col] = int(value)  # sizes are whole bytes; NaN made the column float
        if fmt == "table":
            row["time"] = iso(time_ns)
            for col in row:
                boot = row.get(col)
                if col == "boot_time_s" and isinstance(boot, int | float) and not math.isnan(boot):
                    row[col] = iso(int(boot * 1e9))
                elif col.endswith("_bytes"):
                    row[col] = _human_bytes(row.get(col), per_s=False)
                elif col.endswith("_bytes_per_s"):
                    row[col] = _human_bytes(row.get(col), per_s=True)
        else:
            row["time"] = iso_utc(time_ns)
        rows.append(row)
    return rows


def _json_rows(
    name: str, records: Sequence[Mapping[str, object]], columns: Sequence[str]
) -> list[dict[str, object]]:
    """One family's rows for ``--format json``: ``metric`` and ``time`` (RFC 3339
    UTC) first, then the record; sizes in whole bytes, NaN as null."""
    whole = [c for c in columns if c.endswith("_bytes")]
    out: list[dict[str, object]] = []
    for rec in records:
        time_ns = int(cast(float, rec["time_ns"]))
        row: dict[str, object] = {"metric": name, "time": None, **rec}
        row["time"] = iso_utc(time_ns)
        row["time_ns"] = time_ns
        for col in whole:
            value = row[col]
            if isinstance(value, float) and not math.isnan(value):
                row[col] = int(value)  # sizes are whole bytes; NaN made the column float
        for col, value in row.items():
            if isinstance(value, float) and math.isnan(value):
                row[col] = None
        out.append(row)
    return out


@host.command("inventory")
@click.option("--host", "host_name", metavar="NAME", help="Only this host.")
@click.option("--history", is_flag=True, help="Every stored change, not only the latest.")
@format_option
@pass_cli
def inventory(cli: CliContext, host_name: str | None, history: bool, fmt: str) -> None:
    """What each host is made of: CPUs, OS, kernel, disks, NICs and mounts.

    Collected every 5 minutes (the inventory tier) and stored only when it changed.
    """
    parent = click.get_current_context().parent
    if host_name is None and parent is not None:
        host_name = parent.params.get("host_name")
    store = cli.read_store()
    try:
        stored = store.inventories(host=host_name, history=history)
    finally:
        store.close()
    if not stored:
        click.echo("no host inventory stored; collectbus run or the daemon collects it", err=True)
        if fmt == "json":
            click.echo("[]")
        return
    if fmt == "json":
        out = [
            {
                "host": r["host"],
                "time": iso_utc(int(str(r["time_ns"]))),
                **json.loads(str(r["document"])),
            }
            for r in stored
        ]
        click.echo(json.dumps(out, indent=2))
        return
    render([_summary(r, fmt) for r in stored], fmt)


def _summary(row: dict[str, object], fmt: str) -> dict[str, object]:
    doc = json.loads(str(row["document"]))
    cpu = doc.get("cpu", {})
    disks = ", ".join(
        f"{d['name']} {_human_bytes(d.get('size_bytes'), per_s=False)}"
        + (" hdd" if d.get("rotational") else "")
        for d in doc.get("disks", [])
        if d.get("size_bytes")
    )
    nics = ", ".join(
        f"{n['name']} {n.get('operstate')}"
        + (f" {n['speed_mbps']} Mb/s" if n.get("speed_mbps") else "")
        for n in doc.get("nics", [])
    )
    time_ns = int(str(row["time_ns"]))
    return {
        "host": row["host"],
        "since": iso(time_ns) if fmt == "table" else iso_utc(time_ns),
        "os": doc.get("os", {}).get("pretty_name"),
        "kernel": doc.get("kernel", {}).get("release"),
        "cpu": cpu.get("model"),
        "sockets/cores/threads": f"{cpu.get('sockets')}/{cpu.get('cores')}/{cpu.get('threads')}",
        "disks": disks,
        "nics": nics,
        "mounts": len(doc.get("mounts", [])),
    }
