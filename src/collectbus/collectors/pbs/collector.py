"""The PBS collectors: jobs, nodes, queues and server, one collector each.

Each entity has its own collector, so each has its own interval on the bus
(by default jobs every 60 s, nodes every 5 min, queues and server every
15 min). They run, through a :class:`~collectbus.collectors.run.CommandRunner`:

=============  =================================================
``pbs-jobs``   ``qstat -f -F json [@server]``; with ``history``,
               ``qstat -x -f -F json [@server]``, which lists the
               finished jobs kept by the server *and* the current ones
``pbs-queues`` ``qstat -Q -f -F json [@server]``
``pbs-server`` ``qstat -B -f -F json [server]``
``pbs-nodes``  ``pbsnodes -a -F json [-s server]``
=============  =================================================

locally, from ``bin_dir``, or on a login node over SSH (:class:`~collectbus.collectors.run.SshRunner`).

**Failures.** A command that exits non-zero (``qstat`` exits 255 when it
cannot reach the server), runs past ``timeout``, or prints no entity section
but a message on stderr (PBS's header-only JSON) raises a
:class:`~collectbus.errors.CollectError` whose one line names the command and
the server: the bus logs the failed collection and backs off; nothing is
taken for "zero jobs". Output that is not JSON even after :mod:`.jsonfix`'s
repairs raises :class:`~collectbus.errors.ParseError`, and the raw bytes are
kept in ``spool_dir`` (its path is in the message).

**Details.** Each collection notes in its event's ``details``: ``server``,
``repaired`` (what :mod:`.jsonfix` repaired, when it did), and for jobs
``history`` (on/off), ``jobs``, ``parsed``/``reused`` (see :mod:`.incremental`),
and ``cluster`` and ``job_listing`` as the job store expects them (the
contract is in :mod:`collectbus.collectors.base`, "Job listings"):

- ``job_listing=complete``: every job the server listed has its record. Only
  then may the store conclude that a job absent from the records is gone.
- ``job_listing=partial``: some entries could not be read, or text was cut
  from the output; the records are right but not all jobs may be there. The
  problem is also reported, so the event's status is ``partial``.
- a failed collection (status ``error``/``timeout``) carries no listing: its
  records, if any, are the last good ones, marked stale.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shlex
import time
from collections.abc import Callable, Sequence
from datetime import tzinfo
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from collectbus.collectors.base import CollectContext
from collectbus.collectors.pbs.incremental import IncrementalJobs
from collectbus.collectors.pbs.jsonfix import JsonRepairError
from collectbus.collectors.pbs.parse import (
    Parsed,
    parse_pbsnodes,
    parse_qstat_queues,
    parse_qstat_server,
)
from collectbus.collectors.run import CommandResult, CommandRunner, LocalRunner, SshRunner
from collectbus.errors import CommandFailed, CommandTimeout, ConfigError, ParseError
from collectbus.records import JobRecord, NodeRecord, QueueRecord, SystemRecord
from collectbus.values import out_of_range_details

__all__ = [
    "PbsJobsCollector",
    "PbsNodesCollector",
    "PbsQueuesCollector",
    "PbsServerCollector",
]

log = logging.getLogger("collectbus.collectors.pbs")
R = TypeVar("R")
#: At most this many raw payloads are kept in the spool folder; the oldest go first.
SPOOL_KEEP = 50


def server_zone(name: str | None) -> tzinfo | None:
    """The zone PBS prints its times in; None (this machine's local zone) for no name."""
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise ConfigError(f"collectors.pbs.timezone: unknown time zone {name!r}") from err


class _PbsCollector:
    """What the four PBS collectors share: building, running and labelling commands."""

    name = "pbs"

    def __init__(
        self,
        *,
        cluster: str = "pbs",
        bin_dir: str | None = None,
        server: str | None = None,
        ssh_host: str | None = None,
        ssh_command: str = "ssh",
        timezone: str | None = None,
        history: bool = False,
        renew_unchanged: bool = True,
        timeout: float = 30.0,
        spool_dir: str | None = "pbs-spool",
        runner: CommandRunner | None = None,
    ) -> None:
        self.cluster = cluster
        self.bin_dir = bin_dir
        self.server = server
        self.ssh_host = ssh_host
        #: Jobs only: run ``qstat -x`` (the server keeps job history).
        self.history = history
        #: Jobs only: give unchanged jobs fresh records (see IncrementalJobs.renew).
        self.renew_unchanged = renew_unchanged
        self.timeout = timeout
        self.spool_dir = spool_dir
        self._last_repair = ""
        self.zone = server_zone(timezone)
        runner = runner or LocalRunner(timeout=timeout)
        self.runner: CommandRunner = (
            SshRunner(ssh_host, inner=runner, ssh=ssh_command) if ssh_host else runner
        )

    def program(self, name: str) -> str:
        return os.path.join(self.bin_dir, name) if self.bin_dir else name

    def label(self, argv: Sequence[str]) -> str:
        """``qstat -f -F json on server S via H``: the source named in every error."""
        where = f"server {self.server}" if self.server else "the default server"
        via = f" via {self.ssh_host}" if self.ssh_host else ""
        return f"{shlex.join(argv)} on {where}{via}"

    def run(self, argv: Sequence[str]) -> CommandResult:
        """Run ``argv``; a failure or timeout is re-raised naming the command and server."""
        label = self.label(argv)
        try:
            return self.runner.run(argv, timeout=self.timeout)
        except CommandFailed as err:
            raise CommandFailed(label, err.returncode, err.stderr_tail) from err
        except CommandTimeout as err:
            raise CommandTimeout(label, err.timeout_s) from err

    def read(
        self,
        argv: Sequence[str],
        section: str,
        ctx: CollectContext,
        parse: Callable[[bytes, int], Parsed[R]],
    ) -> tuple[Parsed[R], CommandResult]:
        """Run, parse, and note in ``ctx`` what it took; raise when nothing usable came."""
        result = self.run(argv)
        label = self.label(argv)
        try:
            parsed = parse(result.stdout, ctx.clock.time_ns())
        except JsonRepairError as err:
            kept = self._spool(result.stdout)
            raise ParseError(label, err.line, f"{err}; {kept}") from err
        if not parsed.has_section and result.stderr_tail.strip():
            # PBS's header-only JSON with "cannot connect to server" on stderr.
            last = result.stderr_tail.strip().splitlines()[-1]
            raise CommandFailed(label, result.returncode, f"no {section} in the output: {last}")
        ctx.detail("server", parsed.server or self.server or "default")
        for key, value in out_of_range_details(parsed.out_of_range):
            ctx.detail(key, value)
        if parsed.repairs:
            text = parsed.repairs.describe()
            ctx.detail("repaired", text)
            if text != self._last_repair:  # once while the same quirk lasts, not every tick
                log.info("%s: repaired the JSON: %s", label, text)
        self._last_repair = parsed.repairs.describe() if parsed.repairs else ""
        if parsed.problem_count:
            more = parsed.problem_count - len(parsed.problems)
            tail = f" (and {more} more)" if more else ""
            ctx.report(
                ParseError(
                    label,
                    None,
                    f"{parsed.problem_count} values unreadable: {'; '.join(parsed.problems[:3])}"
                    + tail,
                )
            )
        return parsed, result

    def _spool(self, raw: bytes) -> str:
        """Keep a payload that could not be read; say where, for the error message."""
        digest = hashlib.sha256(raw).hexdigest()[:12]
        if not self.spool_dir:
            return f"raw output ({len(raw)} bytes, sha256 {digest}) not kept: no spool_dir"
        folder = Path(self.spool_dir)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        path = folder / f"{self.name}-{stamp}-{digest}.raw"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path.write_bytes(raw)
            old = sorted(folder.glob(f"{self.name}-*.raw"))
            for stale in old[:-SPOOL_KEEP]:
                stale.unlink(missing_ok=True)
        except OSError as err:
            return f"raw output ({len(raw)} bytes) could not be kept in {folder}: {err.strerror}"
        return f"raw output ({len(raw)} bytes) kept in {path}"


class PbsJobsCollector(_PbsCollector):
    """Every job the server lists, with the finished ones when ``history`` is on."""

    name = "pbs-jobs"

    _jobs: IncrementalJobs | None = None

    @property
    def jobs_parser(self) -> IncrementalJobs:
        """The parser that remembers the last listing (see :mod:`.incremental`)."""
        if self._jobs is None:
            self._jobs = IncrementalJobs(
                cluster=self.cluster, zone=self.zone, renew=self.renew_unchanged
            )
        return self._jobs

    def argv(self) -> list[str]:
        flags = ["-x", "-f"] if self.history else ["-f"]
        return [self.program("qstat"), *flags, "-F", "json", *self._destination()]

    def _destination(self) -> list[str]:
        return [f"@{self.server}"] if self.server else []

    def collect(self, ctx: CollectContext) -> list[JobRecord]:
        jobs = self.jobs_parser
        parsed, _ = self.read(self.argv(), "Jobs", ctx, jobs.parse)
        ctx.detail("history", "on" if self.history else "off")
        ctx.detail("jobs", str(len(parsed.records)))
        ctx.detail("parsed", str(jobs.parsed))
        ctx.detail("reused", str(jobs.reused))
        ctx.job_listing(self.cluster, complete=parsed.complete)
        if not parsed.complete:
            ctx.report(
                ParseError(
                    self.label(self.argv()),
                    None,
                    "job listing incomplete: no job may be taken for gone from it",
                )
            )
        return parsed.records


class PbsQueuesCollector(_PbsCollector):
    """Every queue: enabled, started, job counts per state."""

    name = "pbs-queues"

    def argv(self) -> list[str]:
        dest = [f"@{self.server}"] if self.server else []
        return [self.program("qstat"), "-Q", "-f", "-F", "json", *dest]

    def collect(self, ctx: CollectContext) -> list[QueueRecord]:
        def parse(payload: bytes, now: int) -> Parsed[QueueRecord]:
            return parse_qstat_queues(payload, cluster=self.cluster, observed_ns=now)

        parsed, _ = self.read(self.argv(), "Queue", ctx, parse)
        ctx.detail("queues", str(len(parsed.records)))
        return parsed.records


class PbsServerCollector(_PbsCollector):
    """The server's state and job counts."""

    name = "pbs-server"

    def argv(self) -> list[str]:
        dest = [self.server] if self.server else []
        return [self.program("qstat"), "-B", "-f", "-F", "json", *dest]

    def collect(self, ctx: CollectContext) -> list[SystemRecord]:
        def parse(payload: bytes, now: int) -> Parsed[SystemRecord]:
            return parse_qstat_server(payload, cluster=self.cluster, observed_ns=now)

        parsed, result = self.read(self.argv(), "Server", ctx, parse)
        if not parsed.has_section:
            raise CommandFailed(self.label(self.argv()), result.returncode, "no Server section")
        return parsed.records


class PbsNodesCollector(_PbsCollector):
    """Every vnode: state, CPUs, GPUs and memory, available and assigned, and its jobs."""

    name = "pbs-nodes"

    def argv(self) -> list[str]:
        dest = ["-s", self.server] if self.server else []
        return [self.program("pbsnodes"), "-a", "-F", "json", *dest]

    def collect(self, ctx: CollectContext) -> list[NodeRecord]:
        def parse(payload: bytes, now: int) -> Parsed[NodeRecord]:
            return parse_pbsnodes(payload, cluster=self.cluster, observed_ns=now)

        parsed, _ = self.read(self.argv(), "nodes", ctx, parse)
        ctx.detail("nodes", str(len(parsed.records)))
        return parsed.records
