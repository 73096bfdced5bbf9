"""``collectbus job ID --usage``: what a job used on its nodes, against what it
asked for (:mod:`collectbus.analysis.jobusage`), as ``seff`` and jobstats
print it: cores and CPU efficiency, memory peak, I/O, per node, and verdicts.

Imported only for ``--usage``: it brings pandas.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import click

from collectbus.analysis.jobusage import NODE_COLUMNS, JobUsage, job_usage, size_text
from collectbus.cli.context import CliContext
from collectbus.cli.jobformat import duration, echo_json, when
from collectbus.cli.output import render
from collectbus.errors import CollectBusError
from collectbus.store.jobquery import read_jobs
from collectbus.store.reader import StoreReader

NODE_TABLE = (
    "host",
    "source",
    "samples",
    "cores",
    "cpu_time",
    "cpu_efficiency",
    "mem_peak",
    "read",
    "written",
    "host_cpu",
    "host_mem_peak",
)


def _plain(value: object) -> object:
    """A pandas or NumPy value as JSON has it (NaN and NA as None)."""
    if value is None:
        return None
    try:
        if value != value:  # NaN
            return None
    except (TypeError, ValueError):  # pandas.NA refuses comparison
        return None
    item = getattr(value, "item", None)
    return item() if callable(item) else value


def _resolve(store: StoreReader, job_id: str, cluster: str | None) -> dict[str, object]:
    """The newest stored job of that id (or PBS id without its server)."""
    with store.reading("read jobs") as conn:
        found = read_jobs(conn, job_id=job_id, cluster=cluster)
        if not found:
            found = read_jobs(conn, job_prefix=job_id, cluster=cluster)
    if not found:
        where = f" on cluster {cluster}" if cluster else ""
        raise CollectBusError(
            f"{store.url}: no job {job_id!r}{where}",
            hint="list the stored jobs with: collectbus jobs --since 30d",
        )
    return max(found, key=lambda r: int(str(r["submit_ns"])))


def document(usage: JobUsage) -> dict[str, object]:
    """The report as JSON has it (schemas/job-usage.json)."""
    total = usage.total
    out: dict[str, object] = {k: _plain(v) for k, v in total.items() if k != "verdicts"}
    out["submitted"] = when(total["submit_ns"], "json")
    out["started"] = when(total["start_ns"], "json")
    out["ended"] = when(total["end_ns"], "json")
    out["verdicts"] = list(total["verdicts"])  # type: ignore[call-overload]
    out["per_node"] = [{k: _plain(v) for k, v in row.items()} for row in usage.node_rows]
    return out


def _percent(value: object) -> str:
    return f"{float(value) * 100:.1f} %" if isinstance(value, int | float) else ""


def _bytes(value: object) -> str:
    return size_text(float(value)) if isinstance(value, int | float) else ""


def _number(value: object, digits: int = 2) -> str:
    if not isinstance(value, int | float) or math.isnan(value):
        return ""
    return f"{value:.{digits}f}".rstrip("0").rstrip(".")


def _summary(doc: Mapping[str, object]) -> list[dict[str, object]]:
    cores, used = doc["cores"], doc["cores_used"]
    rows = [
        ("state", doc["state"]),
        ("user", doc["user"]),
        ("account", doc["account"]),
        ("queue", doc["queue"]),
        ("nodes", ", ".join(doc["exec_hosts"]) or doc["nodes"]),  # type: ignore[arg-type]
        ("started", when(doc["start_ns"], "table")),
        ("ended", "(running: until now)" if doc["running"] else when(doc["end_ns"], "table")),
        ("elapsed", duration(doc["elapsed_s"])),  # type: ignore[arg-type]
        ("cores requested", cores),
        ("cores used (mean)", _number(used)),
        ("CPU time", duration(doc["cpu_seconds"])),  # type: ignore[arg-type]
        ("CPU efficiency", _percent(doc["cpu_efficiency"])),
        ("memory requested", _bytes(doc["mem_requested_bytes"])),
        ("memory peak", _bytes(doc["mem_peak_bytes"])),
        ("memory efficiency", _percent(doc["mem_efficiency"])),
        ("read", _bytes(doc["read_bytes"])),
        ("written", _bytes(doc["write_bytes"])),
        ("samples", doc["samples"]),
    ]
    return [{"field": k, "value": v} for k, v in rows if v not in (None, "")]


def _node_row(node: Mapping[str, object]) -> dict[str, object]:
    return {
        "host": node["host"],
        "source": node["source"],
        "samples": node["samples"],
        "cores": _number(node["cores"]),
        "cpu_time": duration(node["cpu_seconds"]),  # type: ignore[arg-type]
        "cpu_efficiency": _percent(node["cpu_efficiency"]),
        "mem_peak": _bytes(node["mem_peak_bytes"]),
        "read": _bytes(node["read_bytes"]),
        "written": _bytes(node["write_bytes"]),
        "host_cpu": _percent(
            None
            if node["host_cpu_percent_mean"] is None
            else float(node["host_cpu_percent_mean"]) / 100  # type: ignore[arg-type]
        ),
        "host_mem_peak": _bytes(node["host_mem_used_peak_bytes"]),
    }


def show_usage(cli: CliContext, job_id: str, cluster: str | None, fmt: str) -> None:
    """Print the usage report of the newest stored job of that id."""
    store = cli.read_side()
    try:
        job = _resolve(store, job_id, cluster)
        usage = job_usage(
            store, str(job["cluster"]), str(job["job_id"]), submit_ns=int(str(job["submit_ns"]))
        )
    finally:
        store.close()
    doc = document(usage)
    if fmt == "json":
        echo_json(doc)
        return
    nodes: list[dict[str, object]] = doc["per_node"]  # type: ignore[assignment]
    if fmt == "csv":
        render(nodes, fmt, columns=NODE_COLUMNS)
        return
    render(
        _summary(doc),
        fmt,
        columns=("field", "value"),
        title=f"{doc['cluster']} {doc['job_id']}: usage",
    )
    if nodes:
        render([_node_row(n) for n in nodes], fmt, columns=NODE_TABLE, title="per node")
    if doc["reason"]:
        click.echo(
            f"no figures: {doc['reason']}" if not doc["samples"] else f"note: {doc['reason']}"
        )
    for line in doc["verdicts"]:  # type: ignore[attr-defined]
        click.echo(line)
