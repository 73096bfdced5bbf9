"""What one batch job used on its nodes: its record joined to its samples.

:func:`job_usage` reads, for one job (its cluster and id; the newest job of
that id unless ``submit_ns`` is given):

- ``job``: its stored record (one row): cores, memory, nodes and walltime
  requested, exec hosts, start and end;
- ``samples``: its ``job_usage`` rows (the ``jobusage`` collector) taken
  within its start-end window on its exec hosts;
- ``hosts``: its nodes' host rates (:func:`collectbus.analysis.host.rates`:
  CPU %, memory, disk and network) over the same window;
- ``nodes``: the figures per node, and ``total`` the job's.

The figures (docs/architecture.md, "Job usage"):

- the window is start to end; a job still running ends now;
- CPU time on a node is the largest ``cpu_seconds`` of its samples there:
  a job's counters start at zero with the job, and the process tree's sum
  can only drop (a process gone without being reaped in the job);
- CPU efficiency is CPU time / (cores x elapsed); a node's cores are the
  job's cores shared evenly over its nodes;
- the memory peak on a node is the largest of its ``mem_peak_bytes`` and
  ``mem_bytes``; the job's is the sum over its nodes (an upper bound when
  they peak at different times), against the memory requested;
- I/O is the largest ``read_bytes`` and ``write_bytes`` (counters since the
  job began).

A figure that cannot be known is None, and ``total["reason"]`` says why (a
job that has not started, no sample on its nodes in its window): never a
zero standing for nothing.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from operator import itemgetter

import pandas as pd

from collectbus.analysis.frames import to_frame
from collectbus.analysis.host import RATE_COLUMNS, rates_from_tables
from collectbus.clock import NS_PER_S
from collectbus.errors import CollectBusError
from collectbus.store.jobquery import JOB_FIELDS, read_jobs
from collectbus.store.jobusage import COLUMNS as SAMPLE_COLUMNS
from collectbus.store.jobusage import job_usage_tuples
from collectbus.store.reader import StoreReader

__all__ = [
    "NODE_COLUMNS",
    "JobUsage",
    "cores_to_ask",
    "host_matches",
    "job_usage",
    "memory_to_ask",
    "node_figures",
    "verdicts",
]

GIB = 2**30
MIB = 2**20
#: Memory asked for in the verdict: the peak plus this share, rounded up.
MEMORY_MARGIN = 0.2
#: The per-node figures, in order.
NODE_COLUMNS = (
    "host",
    "samples",
    "source",
    "cores",
    "cpu_seconds",
    "cpu_efficiency",
    "mem_peak_bytes",
    "read_bytes",
    "write_bytes",
    "processes_max",
    "host_cpu_percent_mean",
    "host_mem_used_peak_bytes",
    "host_disk_read_bytes",
    "host_disk_write_bytes",
)


class JobUsage:
    """One job's record, samples, host rates and figures (see the module).

    ``total`` and ``node_rows`` are plain Python; the DataFrames are built
    when first asked for, so that a caller that prints the figures pays for
    no frame it does not use."""

    def __init__(
        self,
        job: dict[str, object],
        sample_rows: list[tuple[object, ...]],
        hosts: pd.DataFrame,
        node_rows: list[dict[str, object]],
        total: dict[str, object],
    ) -> None:
        self.job_row = job
        self.sample_rows = sample_rows
        self.hosts = hosts
        self.node_rows = node_rows
        self.total = total

    @functools.cached_property
    def job(self) -> pd.DataFrame:
        """The job's stored record, one row."""
        return pd.DataFrame([self.job_row], columns=list(JOB_FIELDS))

    @functools.cached_property
    def samples(self) -> pd.DataFrame:
        """Its ``job_usage`` rows on its nodes in its window, oldest first."""
        return pd.DataFrame(self.sample_rows, columns=list(SAMPLE_COLUMNS))

    @functools.cached_property
    def nodes(self) -> pd.DataFrame:
        """The figures per node: :data:`NODE_COLUMNS`."""
        return pd.DataFrame(self.node_rows, columns=list(NODE_COLUMNS))


def host_matches(sample_host: str, exec_hosts: Iterable[str]) -> bool:
    """Whether a sample's host is one of the job's: the same name, or the same
    short name (``n1`` and ``n1.cluster.org``: schedulers and hosts disagree)."""
    short = sample_host.split(".", 1)[0]
    return any(h == sample_host or h.split(".", 1)[0] == short for h in exec_hosts)


def _largest(values: Iterable[object]) -> float | None:
    known = [v for v in values if v is not None]
    return float(max(known)) if known else None  # type: ignore[type-var,arg-type]


def _as_int(value: float | None) -> int | None:
    return None if value is None else int(value)


_HOST = SAMPLE_COLUMNS.index("host")
#: (figure, the sample columns it is the largest of).
_LARGEST = (
    ("cpu_seconds", ("cpu_seconds",)),
    ("mem_peak_bytes", ("mem_peak_bytes", "mem_bytes")),
    ("read_bytes", ("read_bytes",)),
    ("write_bytes", ("write_bytes",)),
    ("processes_max", ("processes",)),
)


def node_figures(rows: Sequence[Sequence[object]]) -> dict[str, dict[str, object]]:
    """Per host, from its samples (tuples in the store's column order):
    ``samples``, ``source`` (``cgroup``, ``proctree`` or both joined by
    ``+``), ``cpu_seconds``, ``mem_peak_bytes``, ``read_bytes``,
    ``write_bytes``, ``processes_max`` (None when not one sample has the value)."""
    by_host: dict[str, list[Sequence[object]]] = {}
    for row in rows:
        by_host.setdefault(str(row[_HOST]), []).append(row)
    out: dict[str, dict[str, object]] = {}
    for host, part in sorted(by_host.items()):
        columns = dict(zip(SAMPLE_COLUMNS, zip(*part, strict=True), strict=True))
        figures: dict[str, object] = {
            "samples": len(part),
            "source": "+".join(sorted({str(v) for v in columns["source"]})),
        }
        for name, names in _LARGEST:
            largest = _largest(v for c in names for v in columns[c])
            figures[name] = largest if name == "cpu_seconds" else _as_int(largest)
        out[host] = figures
    return out


def _sum(values: Iterable[object]) -> float | None:
    known = [float(v) for v in values if isinstance(v, int | float)]
    return sum(known) if known else None


def cores_to_ask(cpu_seconds: float, elapsed_s: float) -> int:
    """The cores a job of this CPU time and elapsed time needs: the cores it
    kept busy on average, rounded up (a tenth of a core is noise), at least 1."""
    busy = cpu_seconds / elapsed_s if elapsed_s > 0 else 0.0
    return max(1, math.ceil(round(busy, 1)))


def memory_to_ask(peak_bytes: int) -> int:
    """The memory to ask for: the peak and :data:`MEMORY_MARGIN`, rounded up to
    a whole GiB above 1 GiB, else to 256 MiB."""
    wanted = peak_bytes * (1 + MEMORY_MARGIN)
    unit = GIB if wanted > GIB else 256 * MIB
    return max(unit, math.ceil(wanted / unit) * unit)


def size_text(n_bytes: float) -> str:
    """Bytes as ``1.2 GiB``, ``512 MiB``, ``3 KiB``."""
    for unit, name in ((2**40, "TiB"), (GIB, "GiB"), (MIB, "MiB"), (2**10, "KiB")):
        if n_bytes >= unit:
            value = n_bytes / unit
            return f"{value:.1f} {name}".replace(".0 ", " ")
    return f"{int(n_bytes)} B"


def verdicts(total: Mapping[str, object]) -> list[str]:
    """One line on the cores and one on the memory, where the figures allow."""
    out: list[str] = []
    cores, cpu, elapsed = total.get("cores"), total.get("cpu_seconds"), total.get("elapsed_s")
    efficiency = total.get("cpu_efficiency")
    if isinstance(cores, int) and isinstance(cpu, float) and isinstance(elapsed, float):
        assert isinstance(efficiency, float)
        noun = "core" if cores == 1 else "cores"
        head = f"used {efficiency * 100:.0f} % of {cores} {noun}"
        ask = cores_to_ask(cpu, elapsed)
        if ask < cores:
            out.append(f"{head}: ask for {ask}")
        elif efficiency < 0.1:
            out.append(f"{head}: mostly idle")
        else:
            out.append(f"{head}: the request fits")
    peak, requested = total.get("mem_peak_bytes"), total.get("mem_requested_bytes")
    if isinstance(peak, int) and isinstance(requested, int) and requested > 0:
        head = f"memory peak {size_text(peak)} of {size_text(requested)} requested"
        ask = memory_to_ask(peak)
        out.append(f"{head}: ask for {size_text(ask)}" if ask < requested else f"{head}: fits")
    elif isinstance(peak, int):
        out.append(f"memory peak {size_text(peak)} (no memory request recorded)")
    return out


def _find_job(
    rows: list[dict[str, object]], job_id: str, submit_ns: int | None
) -> dict[str, object] | None:
    if submit_ns is not None:
        rows = [r for r in rows if r["submit_ns"] == submit_ns]
    return max(rows, key=lambda r: int(str(r["submit_ns"])), default=None)


def _window(job: Mapping[str, object], now_ns: int) -> tuple[int, int] | None:
    start, end = job.get("start_ns"), job.get("end_ns")
    if not isinstance(start, int):
        return None
    return start, end if isinstance(end, int) else max(start, now_ns)


def _host_figures(hosts: pd.DataFrame, host: str) -> dict[str, object]:
    if hosts.empty:
        return {}
    part = hosts[hosts["host"] == host]
    if part.empty:
        return {}
    times = part["time_ns"].to_numpy()
    steps = pd.Series(times).diff().to_numpy() / NS_PER_S

    def integral(column: str) -> float | None:
        values = part[column].to_numpy() * steps
        known = values[~pd.isna(values)]
        return float(known.sum()) if len(known) else None

    cpu = part["cpu_percent"].dropna()
    mem = part["mem_used_bytes"].dropna()
    return {
        "host_cpu_percent_mean": float(cpu.mean()) if len(cpu) else None,
        "host_mem_used_peak_bytes": int(mem.max()) if len(mem) else None,
        "host_disk_read_bytes": integral("disk_read_bytes_per_s"),
        "host_disk_write_bytes": integral("disk_write_bytes_per_s"),
    }


def _host_rates(
    store: StoreReader, hosts: Sequence[str], since_ns: int, until_ns: int
) -> pd.DataFrame:
    parts = []
    for host in hosts:

        def table(name: str, host: str = host) -> pd.DataFrame:
            return to_frame(store.read_host(name, host=host, since_ns=since_ns, until_ns=until_ns))

        parts.append(rates_from_tables(table))
    if not parts:
        return pd.DataFrame(columns=["host", "time_ns", *RATE_COLUMNS])
    return pd.concat(parts, ignore_index=True)


def job_usage(
    store: StoreReader,
    cluster: str,
    job_id: str,
    *,
    submit_ns: int | None = None,
    now_ns: int | None = None,
    host_rates: bool = True,
) -> JobUsage:
    """One job's usage (see the module). CollectBusError when the store has no
    such job. ``now_ns`` ends a running job's window (default: now);
    ``host_rates=False`` skips its nodes' host samples."""
    now = time.time_ns() if now_ns is None else now_ns
    with store.reading("read a job and its usage") as conn:
        job = _find_job(read_jobs(conn, cluster=cluster, job_id=job_id), job_id, submit_ns)
        if job is None:
            raise CollectBusError(f"{store.url}: no job {job_id!r} on cluster {cluster}")
        window = _window(job, now)
        rows = (
            []
            if window is None
            else job_usage_tuples(conn, cluster, job_id, since_ns=window[0], until_ns=window[1] + 1)
        )
    exec_hosts = [h for h in str(job.get("exec_hosts") or "").split(",") if h]
    seen = set(map(itemgetter(_HOST), rows))
    mine = {h for h in seen if not exec_hosts or host_matches(str(h), exec_hosts)}
    on_nodes = rows if mine == seen else [r for r in rows if r[_HOST] in mine]
    figures = node_figures(on_nodes)
    hosts = (
        _host_rates(store, sorted(figures) or exec_hosts, *window)
        if window is not None and host_rates
        else pd.DataFrame(columns=["host", "time_ns", *RATE_COLUMNS])
    )
    total = _total(job, window, figures, exec_hosts, rows, on_nodes)
    nodes = _node_rows(figures, hosts, total)
    return JobUsage(job, on_nodes, hosts, nodes, total)


def _total(
    job: Mapping[str, object],
    window: tuple[int, int] | None,
    figures: Mapping[str, Mapping[str, object]],
    exec_hosts: Sequence[str],
    rows: Sequence[Sequence[object]],
    on_nodes: Sequence[Sequence[object]],
) -> dict[str, object]:
    cores = job.get("cpus_requested")
    total: dict[str, object] = {
        "cluster": job["cluster"],
        "job_id": job["job_id"],
        "submit_ns": job["submit_ns"],
        "state": job["state"],
        "user": job.get("username"),
        "account": job.get("account"),
        "queue": job.get("queue"),
        "start_ns": job.get("start_ns"),
        "end_ns": job.get("end_ns"),
        "running": window is not None and not isinstance(job.get("end_ns"), int),
        "exec_hosts": list(exec_hosts),
        "nodes": job.get("nodes_requested") or (len(exec_hosts) or None),
        "cores": cores if isinstance(cores, int) and cores > 0 else None,
        "mem_requested_bytes": job.get("mem_requested_bytes"),
        "walltime_requested_s": job.get("walltime_requested_seconds"),
        "elapsed_s": None if window is None else (window[1] - window[0]) / NS_PER_S,
        "samples": len(on_nodes),
        "cpu_seconds": _sum(f["cpu_seconds"] for f in figures.values()),
        "cpu_efficiency": None,
        "cores_used": None,
        "mem_peak_bytes": _as_int(_sum(f["mem_peak_bytes"] for f in figures.values())),
        "mem_efficiency": None,
        "read_bytes": _as_int(_sum(f["read_bytes"] for f in figures.values())),
        "write_bytes": _as_int(_sum(f["write_bytes"] for f in figures.values())),
        "reason": None,
    }
    elapsed, cpu = total["elapsed_s"], total["cpu_seconds"]
    if isinstance(cpu, float) and isinstance(elapsed, float) and elapsed > 0:
        total["cores_used"] = cpu / elapsed
        if isinstance(total["cores"], int):
            total["cpu_efficiency"] = cpu / (total["cores"] * elapsed)
    peak, requested = total["mem_peak_bytes"], total["mem_requested_bytes"]
    if isinstance(peak, int) and isinstance(requested, int) and requested > 0:
        total["mem_efficiency"] = peak / requested
    total["reason"] = _reason(job, window, exec_hosts, rows, on_nodes, total)
    total["verdicts"] = verdicts(total)
    return total


def _reason(
    job: Mapping[str, object],
    window: tuple[int, int] | None,
    exec_hosts: Sequence[str],
    rows: Sequence[Sequence[object]],
    on_nodes: Sequence[Sequence[object]],
    total: Mapping[str, object],
) -> str | None:
    """Why the figures are missing (None when they are all there)."""
    if window is None:
        return f"job {job['job_id']} has not started (state {job['state']})"
    if not on_nodes:
        if rows:
            others = sorted({str(r[_HOST]) for r in rows})
            return (
                f"no job_usage sample on its hosts ({', '.join(exec_hosts)}); "
                f"samples of hosts {', '.join(others)} are not its"
            )
        return (
            "no job_usage sample in its window: is the jobusage collector "
            "enabled on its nodes, with this cluster name?"
        )
    missing = [k for k in ("cpu_efficiency", "mem_efficiency") if total[k] is None]
    if not missing:
        return None
    why = []
    if total["cpu_seconds"] is None:
        why.append("no sample has its CPU time")
    elif total["cores"] is None:
        why.append("no core count recorded")
    if total["mem_peak_bytes"] is None:
        why.append("no sample has its memory")
    elif not isinstance(total["mem_requested_bytes"], int):
        why.append("no memory request recorded")
    if total["elapsed_s"] == 0:
        why.append("it ran no time")
    return "; ".join(why) or None


def _node_rows(
    figures: Mapping[str, Mapping[str, object]], hosts: pd.DataFrame, total: Mapping[str, object]
) -> list[dict[str, object]]:
    cores, elapsed = total["cores"], total["elapsed_s"]
    share = cores / len(figures) if isinstance(cores, int) and figures else None
    rows = []
    for host, f in figures.items():
        cpu = f["cpu_seconds"]
        efficiency = (
            cpu / (share * elapsed)
            if isinstance(cpu, float) and share and isinstance(elapsed, float) and elapsed > 0
            else None
        )
        row: dict[str, object] = dict.fromkeys(NODE_COLUMNS)
        row.update(f)
        row.update(host=host, cores=share, cpu_efficiency=efficiency, **_host_figures(hosts, host))
        rows.append(row)
    return rows
