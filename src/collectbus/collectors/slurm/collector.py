"""The Slurm collectors: jobs, nodes and partitions, each on its own schedule.

Each runs Slurm's own commands through a :class:`~collectbus.collectors.run.CommandRunner`
(locally, or on a login node through ``ssh`` when ``ssh_host`` is set), with a
timeout, and hands the output to the pure parsers of :mod:`.parse` and :mod:`.text`.

A command that fails, hangs past its timeout or prints something that does not
parse fails the collection with one line naming the command (a
:class:`~collectbus.errors.CollectError`); the bus logs it, backs off and serves
the last good result, marked stale. One job, node or partition that cannot be
built is that item's problem: it is left out, and one reported line names the
cluster and the items (``cluster c1: 1 jobs refused: job 61: missing key
'job_state'``), counted in the details (``refused``); the rest is stored.

**Is the job listing complete?** A jobs collection that returns records holds
every job ``squeue`` listed (after the configured filters), and says so in its
event's details as the job store expects (``cluster`` and
``job_listing=complete``; the contract is in :mod:`collectbus.collectors.base`,
"Job listings"). With a ``states`` filter the listing is ``partial``: a job
that leaves the kept states has not gone. When ``squeue`` fails, the
collection fails (no fresh records, no details), so a job can never look
vanished because of a failed ``squeue``. A listing with a refused job is
``partial`` too (the job is not in it, yet not gone). When only the accounting query
(``sacct``) fails, the collection is ``partial`` and marks nothing: the
finished jobs from accounting are missing this time and are fetched by the
next collection (its window starts where the last good one did). Each
collection also has one :class:`~collectbus.records.SystemRecord` with the
number of listed jobs (``jobs_total``) per Slurm state.
"""

from __future__ import annotations

import json
import math
import shlex
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, tzinfo
from typing import Literal

from collectbus.collectors.base import CollectContext
from collectbus.collectors.run import CommandResult, CommandRunner, LocalRunner, ssh_argv
from collectbus.collectors.slurm.filters import filter_jobs
from collectbus.collectors.slurm.parse import (
    is_array_remainder,
    parse_sacct_json,
    parse_sinfo_json,
    parse_squeue_json,
    raw_job_id,
)
from collectbus.collectors.slurm.text import (
    parse_sacct_completion,
    parse_sacct_exit_codes,
    parse_scontrol_partitions,
    with_job_counts,
)
from collectbus.errors import CollectError, CommandFailed, ParseError
from collectbus.records import FINAL_JOB_STATES, JobRecord, Record, SystemRecord
from collectbus.values import out_of_range_details

__all__ = [
    "SlurmJobsCollector",
    "SlurmNodesCollector",
    "SlurmPartitionsCollector",
    "SlurmSettings",
]

Accounting = Literal["auto", "slurmdbd", "jobcomp", "none"]

#: Slurm's final states, as ``sacct -s`` takes them, and REQUEUED (RQ): the end
#: of a run that Slurm requeued (the next run is another job, with a new submit time).
SACCT_FINAL_STATES = "BF,CA,CD,DL,F,NF,OOM,PR,RQ,TO"
#: Columns asked of ``sacct -c`` (the jobcomp log has no more than these).
SACCT_COMPLETION_FIELDS = (
    "JobID,JobIDRaw,JobName,State,Partition,Account,User,NNodes,NCPUS,NodeList,"
    "Timelimit,ElapsedRaw,Eligible,Start,End,ExitCode"
)
# Finished jobs are asked for since the last good query, less this margin
# (clocks of the collector and slurmctld, jobs recorded late by slurmdbd).
_OVERLAP_S = 120
_DISABLED = "accounting storage is disabled"


@dataclass(frozen=True, slots=True, kw_only=True)
class SlurmSettings:
    """Where and how to run Slurm's commands (the ``[collectors.slurm]`` section)."""

    #: The name records carry; None takes the name Slurm gives (``ClusterName``).
    cluster: str | None = None
    #: The folder of squeue, sinfo, sacct and scontrol; None looks them up in PATH.
    bin_dir: str | None = None
    #: Run the commands on this host through ``ssh`` (BatchMode), e.g. a login node.
    ssh_host: str | None = None
    #: Seconds each command may run before it is killed.
    timeout_s: float = 30.0
    #: Where finished jobs come from: ``slurmdbd`` (``sacct --json``), ``jobcomp``
    #: (``sacct -c``), ``none``, or ``auto`` (sacct, then sacct -c when accounting is off).
    accounting: Accounting = "auto"
    #: How far back the first accounting query looks.
    sacct_lookback_s: float = 3600.0
    #: Keep only these users' jobs / jobs in these states (neutral or Slurm's); empty keeps all.
    users: tuple[str, ...] = ()
    states: tuple[str, ...] = ()


def _note_out_of_range(ctx: CollectContext, replaced: list[str]) -> None:
    """Put the values replaced by None (out of range) in the collection's details."""
    for key, value in out_of_range_details(replaced):
        ctx.detail(key, value)


def _report_refused(
    ctx: CollectContext, command: str, cluster: str, what: str, refused: list[str]
) -> None:
    """Report the items a parser refused: one line naming the cluster and the first few.

    The collection turns ``partial``; the count is in its details (``refused``).
    """
    if not refused:
        return
    shown = "; ".join(refused[:3])
    more = f" (and {len(refused) - 3} more)" if len(refused) > 3 else ""
    ctx.detail("refused", str(len(refused)))
    ctx.report(
        ParseError(
            command, None, f"cluster {cluster}: {len(refused)} {what} refused: {shown}{more}"
        )
    )


class _SlurmCommands:
    """Builds and runs the commands of one collector."""

    def __init__(self, settings: SlurmSettings, runner: CommandRunner | None) -> None:
        self.settings = settings
        self.runner = runner or LocalRunner(timeout=settings.timeout_s)
        self._cluster: str | None = None

    def argv(self, program: str, *args: str) -> list[str]:
        path = (
            f"{self.settings.bin_dir.rstrip('/')}/{program}" if self.settings.bin_dir else program
        )
        if self.settings.ssh_host is None:
            return [path, *args]
        return ssh_argv(self.settings.ssh_host, [path, *args], options=("-o", "ConnectTimeout=10"))

    def run(self, ctx: CollectContext, program: str, *args: str) -> CommandResult:
        timeout = self.settings.timeout_s
        if ctx.deadline_ns is not None:
            left = (ctx.deadline_ns - ctx.clock.monotonic_ns()) / 1e9
            if left <= 0:
                raise CollectError(shlex.join([program, *args]), "no time left before the deadline")
            timeout = min(timeout, left)
        return self.runner.run(self.argv(program, *args), timeout=timeout)

    def cluster(self, ctx: CollectContext, found: str | None = None) -> str:
        """The configured cluster name, else Slurm's ``ClusterName`` (asked once)."""
        if self.settings.cluster:
            return self.settings.cluster
        if found:
            self._cluster = found
        if self._cluster is None:
            result = self.run(ctx, "scontrol", "show", "config")
            self._cluster = _cluster_name(result.stdout) or "slurm"
        return self._cluster


class SlurmJobsCollector:
    """Every job ``squeue`` lists, plus the jobs that finished since the last collection.

    See the module docstring for how a complete listing is marked.
    """

    def __init__(
        self,
        settings: SlurmSettings | None = None,
        *,
        runner: CommandRunner | None = None,
        name: str = "slurm-jobs",
    ) -> None:
        self.name = name
        self._cmd = _SlurmCommands(settings or SlurmSettings(), runner)
        self._mode: Accounting = self._cmd.settings.accounting
        self._last_sacct_ns: int | None = None  # wall time of the last good accounting query

    @property
    def accounting(self) -> Accounting:
        """The accounting source in use (``auto`` turns into ``slurmdbd`` or ``jobcomp``)."""
        return self._mode

    def collect(self, ctx: CollectContext) -> list[Record]:
        settings = self._cmd.settings
        now = ctx.clock.time_ns()
        result = self._cmd.run(ctx, "squeue", "--json")
        replaced: list[str] = []
        refused: list[str] = []
        # Raw ids (an array task 61_1 is job 62) of every job squeue lists.
        listed_raw: set[tuple[str, int | None]] = set()
        live = parse_squeue_json(
            result.stdout,
            source=result.command,
            cluster=settings.cluster,
            observed_ns=now,
            replaced=replaced,
            refused=refused,
            raw_ids=listed_raw,
        )
        _note_out_of_range(ctx, replaced)
        cluster = self._cmd.cluster(ctx, live[0].cluster if live else None)
        _report_refused(ctx, result.command, cluster, "jobs", refused)
        live = [j if j.cluster == cluster else replace(j, cluster=cluster) for j in live]
        # The pending remainder of an array (61_[2-5%2]) is no job: its tasks
        # become jobs as they are split out of it.
        live = [j for j in live if not is_array_remainder(j.job_id)]
        live = filter_jobs(live, users=settings.users, states=settings.states)
        records: list[Record] = list(live)
        records.append(_job_counts(cluster, live, now, result.command))
        # A refused job is missing from the listing: it must not look gone.
        ctx.job_listing(cluster, complete=not settings.states and not refused)
        finished = self.finished_jobs(ctx, cluster=cluster)
        listed_raw_ids = {raw for raw, _ in listed_raw}
        for job in filter_jobs(finished, users=settings.users, states=settings.states):
            # squeue's view of a job it still lists is the fresher one. Matched
            # on the raw id: for a second after an array task ends, sacct
            # reports it under its raw id alone (62, not 61_1).
            raw = raw_job_id(job)
            if (raw, job.submit_ns) in listed_raw or (
                job.submit_ns is None and raw in listed_raw_ids
            ):
                continue
            records.append(job)
        return records

    def finished_jobs(self, ctx: CollectContext, *, cluster: str | None = None) -> list[JobRecord]:
        """The jobs that finished since the last good query, from accounting.

        The first query looks back ``sacct_lookback_s``; each later one starts
        where the last good one did, less a margin. A failure is reported to
        ``ctx`` (the collection turns ``partial``) and the window stays put.
        """
        if self._mode == "none":
            return []
        now = ctx.clock.time_ns()
        cluster = cluster or self._cmd.cluster(ctx)
        since = self._window(now)
        try:
            if self._mode in ("auto", "slurmdbd"):
                try:
                    jobs = self._sacct_json(ctx, since, now, cluster)
                    self._mode = "slurmdbd"
                except CommandFailed as err:
                    if self._mode != "auto" or _DISABLED not in err.stderr_tail:
                        raise
                    self._mode = "jobcomp"  # accounting is off here: read the jobcomp log
            if self._mode == "jobcomp":
                jobs = self._sacct_completion(ctx, since, now, cluster)
        except CollectError as err:
            ctx.report(err)
            return []
        self._last_sacct_ns = now
        return [j for j in jobs if j.state in FINAL_JOB_STATES]

    def _window(self, now: int) -> str:
        if self._last_sacct_ns is None:
            back = self._cmd.settings.sacct_lookback_s
        else:
            back = (now - self._last_sacct_ns) / 1e9 + _OVERLAP_S
        return f"now-{math.ceil(back)}seconds"

    def _sacct_json(
        self, ctx: CollectContext, since: str, now: int, cluster: str
    ) -> list[JobRecord]:
        result = self._cmd.run(
            ctx, "sacct", "--json", "-a", "-S", since, "-E", "now", "-s", SACCT_FINAL_STATES
        )
        replaced: list[str] = []
        refused: list[str] = []
        jobs = parse_sacct_json(
            result.stdout,
            source=result.command,
            cluster=cluster,
            observed_ns=now,
            replaced=replaced,
            refused=refused,
        )
        _note_out_of_range(ctx, replaced)
        _report_refused(ctx, result.command, cluster, "finished jobs", refused)
        if any(
            j.state == "failed" and j.exit_status is None and j.exit_signal is None for j in jobs
        ):
            jobs = self._exit_codes(ctx, since, jobs)
        return jobs

    def _exit_codes(
        self, ctx: CollectContext, since: str, jobs: list[JobRecord]
    ) -> list[JobRecord]:
        """Fill in the exit status that ``sacct --json`` of Slurm 22.05 loses, from its text output."""
        try:
            result = self._cmd.run(
                ctx, "sacct", "-a", "-X", "-P", "-S", since, "-E", "now",
                "-s", SACCT_FINAL_STATES, "-o", "JobID,Submit,ExitCode",
            )  # fmt: skip
            codes = parse_sacct_exit_codes(result.stdout, source=result.command, tz=_local_tz())
        except CollectError as err:
            ctx.report(err)
            return jobs
        # By (id, submit time); by id alone when the id is unique in the window
        # (a login node in another time zone prints another local time).
        ids = Counter(job_id for job_id, _ in codes)
        by_id = {job_id: code for (job_id, _), code in codes.items() if ids[job_id] == 1}
        out = []
        for job in jobs:
            code = codes.get((job.job_id, job.submit_ns), by_id.get(job.job_id))
            if job.exit_status is None and job.exit_signal is None and code is not None:
                job = replace(job, exit_status=code[0], exit_signal=code[1])
            out.append(job)
        return out

    def _sacct_completion(
        self, ctx: CollectContext, since: str, now: int, cluster: str
    ) -> list[JobRecord]:
        result = self._cmd.run(
            ctx, "sacct", "-c", "-P", "-a", "-S", since, "-E", "now", "-o", SACCT_COMPLETION_FIELDS
        )
        # sacct -c prints local time; asking for epoch seconds would need
        # SLURM_TIME_FORMAT in its environment, which ssh does not pass on.
        return parse_sacct_completion(
            result.stdout,
            source=result.command,
            cluster=cluster,
            observed_ns=now,
            tz=_local_tz(),
        )


class SlurmNodesCollector:
    """Every node ``sinfo --json`` lists."""

    def __init__(
        self,
        settings: SlurmSettings | None = None,
        *,
        runner: CommandRunner | None = None,
        name: str = "slurm-nodes",
    ) -> None:
        self.name = name
        self._cmd = _SlurmCommands(settings or SlurmSettings(), runner)

    def collect(self, ctx: CollectContext) -> list[Record]:
        now = ctx.clock.time_ns()
        result = self._cmd.run(ctx, "sinfo", "--json")
        replaced: list[str] = []
        refused: list[str] = []
        cluster = self._cmd.cluster(ctx)
        nodes = parse_sinfo_json(
            result.stdout,
            source=result.command,
            cluster=cluster,
            observed_ns=now,
            replaced=replaced,
            refused=refused,
        )
        _note_out_of_range(ctx, replaced)
        _report_refused(ctx, result.command, cluster, "nodes", refused)
        return list(nodes)


class SlurmPartitionsCollector:
    """Every partition (``scontrol show partition -o``), with its jobs counted from ``squeue``.

    When ``squeue`` fails the partitions still come, without counts, and the
    collection is ``partial``.
    """

    def __init__(
        self,
        settings: SlurmSettings | None = None,
        *,
        runner: CommandRunner | None = None,
        name: str = "slurm-partitions",
    ) -> None:
        self.name = name
        self._cmd = _SlurmCommands(settings or SlurmSettings(), runner)

    def collect(self, ctx: CollectContext) -> list[Record]:
        now = ctx.clock.time_ns()
        result = self._cmd.run(ctx, "scontrol", "show", "partition", "-o")
        cluster = self._cmd.cluster(ctx)
        refused: list[str] = []
        queues = parse_scontrol_partitions(
            result.stdout,
            source=result.command,
            cluster=cluster,
            observed_ns=now,
            refused=refused,
        )
        _report_refused(ctx, result.command, cluster, "partitions", refused)
        try:
            jobs = self._cmd.run(ctx, "squeue", "--json")
            refused_jobs: list[str] = []
            live = parse_squeue_json(
                jobs.stdout,
                source=jobs.command,
                cluster=cluster,
                observed_ns=now,
                refused=refused_jobs,
            )
        except CollectError as err:
            ctx.report(err)
            return list(queues)
        # The counts leave out a refused job; the report says so.
        _report_refused(ctx, jobs.command, cluster, "jobs (not counted)", refused_jobs)
        return list(with_job_counts(queues, live))


def _cluster_name(config: bytes) -> str | None:
    """``ClusterName = x`` of ``scontrol show config``."""
    for line in config.decode("utf-8", errors="replace").splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() == "ClusterName":
            return value.strip() or None
    return None


def _job_counts(cluster: str, jobs: Sequence[JobRecord], now: int, command: str) -> SystemRecord:
    counts: dict[str, int] = {}
    for job in jobs:
        counts[job.native_state] = counts.get(job.native_state, 0) + 1
    return SystemRecord(
        cluster=cluster,
        scheduler="slurm",
        server=cluster,
        observed_ns=now,
        jobs_total=len(jobs),
        state_counts=tuple(sorted(counts.items())),
        raw_json=json.dumps({"command": command}),
    )


def _local_tz() -> tzinfo:
    tz = datetime.now().astimezone().tzinfo
    return tz if tz is not None else UTC
