"""``collectbus run`` (collect in the foreground) and ``collectbus collect`` (one sample now)."""

from __future__ import annotations

import json
import math
import sys
import threading
import time

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from collectbus.cli.context import CliContext, pass_cli
from collectbus.cli.exitcodes import EXIT_FAILED
from collectbus.cli.output import (
    duration_option,
    format_option,
    iso_utc,
    item_rows,
    partly_done,
    render,
)
from collectbus.collectors.base import CollectContext, close_collector
from collectbus.errors import CollectError, ConfigError, StoreError
from collectbus.pipeline import Pipeline, Summary, collects_anything, host_collector_options
from collectbus.plugins import load_collector
from collectbus.procfields import MEMINFO_COLUMNS, VMSTAT_COLUMNS
from collectbus.records import HostSample


@click.command()
@click.option(
    "--duration",
    callback=duration_option,
    metavar="TIME",
    help="Stop after TIME (30s, 5m); default: until Ctrl-C.",
)
@click.option(
    "--interval",
    callback=duration_option,
    metavar="TIME",
    help="Host sample interval (default: its tier's, 10s).",
)
@format_option
@pass_cli
def run(cli: CliContext, duration: float | None, interval: float | None, fmt: str) -> None:
    """Collect in the foreground into the store, then print a summary.

    --format json prints the summary as one object (duration_s, collections,
    samples, errors, skips, drops, failed_writes, unwritten, database); csv as
    item,value rows.
    """
    config = cli.config()
    if not collects_anything(config):
        raise ConfigError(
            f"{config.source}: every collector is disabled: nothing to run",
            hint="set enabled = true in [collectors.host], [collectors.pbs] or [collectors.slurm]",
        )
    pipeline = Pipeline(config, interval_s=interval)
    store, _sink = pipeline.local()
    try:
        # A read-only file fails now, as an unreachable server does, not after the run.
        store.check_writable()
    except StoreError:
        store.close()
        raise
    stop = threading.Event()
    err_console = Console(stderr=True)
    click.echo(f"collecting into {store.url}; Ctrl-C to stop", err=True)
    try:
        if duration is not None and err_console.is_terminal:
            summary = _run_with_progress(pipeline, stop, duration, err_console)
        else:
            summary = pipeline.run(stop, duration)
    except KeyboardInterrupt:
        stop.set()
        summary = pipeline.summary()
    _print_summary(summary, fmt)
    if summary.unwritten or summary.samples == 0:
        # Nothing (or not everything) reached the database: a script must notice.
        sys.exit(EXIT_FAILED)
    if summary.errors:
        partly_done(f"{summary.errors} collections failed; the others are stored")


def _run_with_progress(
    pipeline: Pipeline, stop: threading.Event, duration: float, console: Console
) -> Summary:
    pipeline.start()
    try:
        with Progress(
            TextColumn("collecting"),
            BarColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as bar:
            task = bar.add_task("run", total=duration)
            start = time.monotonic()
            while not stop.wait(0.2):
                elapsed = time.monotonic() - start
                bar.update(task, completed=min(elapsed, duration))
                if elapsed >= duration:
                    break
    finally:
        pipeline.stop()
    return pipeline.summary()


def _print_summary(summary: Summary, fmt: str) -> None:
    if fmt != "table":
        document: dict[str, object] = {
            "duration_s": round(summary.duration_s, 3),
            "collections": summary.collections,
            "samples": summary.samples,
            "errors": summary.errors,
            "skips": summary.skips,
            "drops": summary.drops,
            "failed_writes": summary.failed_writes,
            "unwritten": summary.unwritten,
            "database": summary.database,
        }
        if fmt == "json":
            click.echo(json.dumps(document, indent=2))
        else:
            render(item_rows(document), fmt, columns=("item", "value"))
        return
    rows: list[dict[str, object]] = [
        {"": "duration", "value": f"{summary.duration_s:.1f} s"},
        {"": "collections stored", "value": summary.collections},
        {"": "samples stored", "value": summary.samples},
        {"": "collector errors", "value": summary.errors},
        {"": "ticks skipped", "value": summary.skips},
        {"": "results dropped", "value": summary.drops},
        {"": "failed writes (retried)", "value": summary.failed_writes},
        {"": "collections not written", "value": summary.unwritten},
        {"": "database", "value": summary.database},
    ]
    render(rows, "table", title="collectbus run")
    if summary.samples and not summary.unwritten and not summary.errors:
        click.echo("next: collectbus host --since 10m", err=True)


@click.command("host")
@format_option
@pass_cli
def collect_host(cli: CliContext, fmt: str) -> None:
    """Read /proc once and print the sample.

    \b
    --format json: one object, indented: host, time (RFC 3339 UTC), time_ns,
      stat, mem and vmstat keyed by column (mem_total_bytes, nr_free_pages:
      the names of the store and of `host --metric mem`; null where this
      kernel has no such key), lists of objects for cpu, disk, net and psi,
      load, uptime, cgroup, errors.
    --format csv: section,name,value; one row per value of the JSON
      (section cpu0, disk sda, mem, ...).
    """
    config = cli.config()
    collector = load_collector("host")(**host_collector_options(config))
    ctx = CollectContext(host=config.host)
    try:
        (sample,) = collector.collect(ctx)
    finally:
        close_collector(collector)
    if not isinstance(sample, HostSample):
        raise CollectError("host", "the host collector returned no sample")
    for problem in ctx.problems:
        click.echo(f"collectbus: warning: {problem}", err=True)
    details = dict(ctx.details)
    if "out_of_range" in details:
        click.echo(
            f"collectbus: warning: {details['out_of_range']} values out of range, shown as null: "
            f"{details.get('out_of_range_fields', '')}",
            err=True,
        )
    if fmt == "json":
        click.echo(json.dumps(sample_document(sample), indent=2, allow_nan=False))
        return
    if fmt == "csv":
        render(_csv_rows(sample_document(sample)), "csv", columns=("section", "name", "value"))
        return
    render(_sample_rows(sample), "table", title=f"host sample: {sample.host}")


def _row(row: tuple[object, ...] | None) -> dict[str, object] | None:
    """A NamedTuple row as an object (its non-finite floats as null)."""
    if row is None:
        return None
    return {k: _finite(v) for k, v in row._asdict().items()}  # type: ignore[attr-defined]


def _finite(value: object) -> object:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def sample_document(sample: HostSample) -> dict[str, object]:
    """A host sample as keyed JSON: every value named, as in the store's columns."""
    return {
        "host": sample.host,
        "time": iso_utc(sample.time_ns),
        "time_ns": sample.time_ns,
        "cpu": [_row(r) for r in sample.cpu],
        "stat": _row(sample.stat),
        "mem": None if sample.mem is None else dict(zip(MEMINFO_COLUMNS, sample.mem, strict=True)),
        "vmstat": (
            None if sample.vmstat is None else dict(zip(VMSTAT_COLUMNS, sample.vmstat, strict=True))
        ),
        "disk": [_row(r) for r in sample.disk],
        "net": [_row(r) for r in sample.net],
        "load": _row(sample.load),
        "psi": [_row(r) for r in sample.psi],
        "uptime": _row(sample.uptime),
        "cgroup": _row(sample.cgroup),
        "errors": list(sample.errors),
    }


#: The field naming each row of a list section, for the CSV's section column.
_LABELS = {"cpu": "cpu", "disk": "device", "net": "iface", "psi": "resource"}


def _csv_rows(doc: dict[str, object]) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = [
        {"section": "sample", "name": key, "value": doc[key]} for key in ("host", "time", "time_ns")
    ]
    for section, value in doc.items():
        if isinstance(value, dict):
            rows += [{"section": section, "name": k, "value": v} for k, v in value.items()]
        elif isinstance(value, list) and section in _LABELS:
            for item in value:
                label = item[_LABELS[section]]
                if section == "cpu":
                    where = "cpu" if label < 0 else f"cpu{label}"
                else:
                    where = f"{section} {label}"
                rows += [{"section": where, "name": k, "value": v} for k, v in item.items()]
        elif section == "errors" and isinstance(value, list):
            rows += [{"section": "error", "name": "", "value": e} for e in value]
    return rows


def _sample_rows(sample: HostSample) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []

    def add(section: str, name: str, value: object) -> None:
        rows.append({"source": section, "metric": name, "value": value})

    for cpu in sample.cpu:
        label = "cpu" if cpu.cpu < 0 else f"cpu{cpu.cpu}"
        ticks = [t for t in cpu[1:9] if t is not None]
        if len(ticks) < 8:  # a value out of range (None): no total
            add("stat", f"{label} total ticks", None)
            continue
        total = sum(ticks)
        add("stat", f"{label} busy ticks", total - (cpu.idle or 0) - (cpu.iowait or 0))
        add("stat", f"{label} total ticks", total)
    if sample.mem is not None:
        mem = dict(zip(MEMINFO_COLUMNS, sample.mem, strict=True))
        for key in ("mem_total_bytes", "mem_available_bytes", "cached_bytes", "swap_free_bytes"):
            add("meminfo", key, mem.get(key))
    for disk in sample.disk:
        for what, sectors in (("read", disk.read_sectors), ("written", disk.write_sectors)):
            add(
                "diskstats",
                f"{disk.device} {what} bytes",
                None if sectors is None else sectors * 512,
            )
    for net in sample.net:
        add("net/dev", f"{net.iface} rx bytes", net.rx_bytes)
        add("net/dev", f"{net.iface} tx bytes", net.tx_bytes)
    if sample.load is not None:
        add(
            "loadavg",
            "load 1/5/15",
            f"{sample.load.load1} {sample.load.load5} {sample.load.load15}",
        )
    if sample.uptime is not None:
        add("uptime", "up seconds", sample.uptime.uptime_s)
    for psi in sample.psi:
        add(f"pressure/{psi.resource}", "some avg10 %", psi.some_avg10)
        add(f"pressure/{psi.resource}", "full avg10 %", psi.full_avg10)
    if sample.cgroup is not None:
        cg = sample.cgroup
        add("cgroup", f"{cg.cgroup} cpu usage us", cg.cpu_usage_usec)
        add("cgroup", f"{cg.cgroup} memory current bytes", cg.memory_current_bytes)
        add("cgroup", f"{cg.cgroup} memory max bytes", cg.memory_max_bytes or "max")
    for error in sample.errors:
        add("error", "", error)
    return rows
