"""Records: what collectors emit and the bus carries.

Records are frozen, slotted, keyword-only dataclasses with integer nanosecond
times. They carry no serialisation of their own: :mod:`collectbus.codec` does
that for every record type. Units go in names (``*_bytes``, ``*_ms``); raw
kernel counters keep the kernel's names and units.

A host sample holds one tuple per /proc source. Rows of files with a fixed
layout are ``NamedTuple`` types whose fields are the columns of the matching
wide table (``host_cpu``, ``host_disk``, ...). The key-value files (meminfo,
vmstat) are tuples aligned to :data:`collectbus.procfields.MEMINFO_COLUMNS`
and :data:`~collectbus.procfields.VMSTAT_COLUMNS`, with None for a key the
kernel does not have.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

# The neutral state vocabularies live in a module of their own, which the CLI
# imports to offer them as choices without building these record types.
from collectbus.states import FINAL_JOB_STATES as FINAL_JOB_STATES
from collectbus.states import FINAL_RESERVATION_STATES as FINAL_RESERVATION_STATES
from collectbus.states import JOB_STATES as JOB_STATES
from collectbus.states import RESERVATION_STATES as RESERVATION_STATES

# ---------------------------------------------------------------- host rows


class CpuRow(NamedTuple):
    """One ``cpuN`` line of /proc/stat, in USER_HZ ticks (``man 5 proc``).

    ``cpu`` is -1 for the aggregate ``cpu`` line. guest and guest_nice are
    already included in user and nice by the kernel.
    """

    cpu: int
    user: int | None
    nice: int | None
    system: int | None
    idle: int | None
    iowait: int | None
    irq: int | None
    softirq: int | None
    steal: int | None
    guest: int | None
    guest_nice: int | None


class StatRow(NamedTuple):
    """The whole-system lines of /proc/stat."""

    boot_time_s: int | None
    ctxt_total: int | None
    intr_total: int | None
    softirq_total: int | None
    forks_total: int | None
    procs_running: int | None
    procs_blocked: int | None


class DiskRow(NamedTuple):
    """One line of /proc/diskstats (``Documentation/admin-guide/iostats.rst``).

    Kernels before 4.18 print 14 fields, 4.18 adds the 4 discard fields and 5.5
    the 2 flush fields; absent fields are None. Sectors are 512 bytes whatever
    the device's sector size.
    """

    device: str
    major: int | None
    minor: int | None
    read_ios: int | None
    read_merges: int | None
    read_sectors: int | None
    read_ticks_ms: int | None
    write_ios: int | None
    write_merges: int | None
    write_sectors: int | None
    write_ticks_ms: int | None
    in_flight: int | None
    io_ticks_ms: int | None
    time_in_queue_ms: int | None
    discard_ios: int | None
    discard_merges: int | None
    discard_sectors: int | None
    discard_ticks_ms: int | None
    flush_ios: int | None
    flush_ticks_ms: int | None


class NetRow(NamedTuple):
    """One interface line of /proc/net/dev: 8 receive and 8 transmit counters."""

    iface: str
    rx_bytes: int | None
    rx_packets: int | None
    rx_errs: int | None
    rx_drop: int | None
    rx_fifo: int | None
    rx_frame: int | None
    rx_compressed: int | None
    rx_multicast: int | None
    tx_bytes: int | None
    tx_packets: int | None
    tx_errs: int | None
    tx_drop: int | None
    tx_fifo: int | None
    tx_colls: int | None
    tx_carrier: int | None
    tx_compressed: int | None


class LoadRow(NamedTuple):
    """/proc/loadavg."""

    load1: float | None
    load5: float | None
    load15: float | None
    procs_running: int | None
    procs_total: int | None
    last_pid: int | None


class PsiRow(NamedTuple):
    """One file of /proc/pressure (``Documentation/accounting/psi.rst``, Linux 4.20).

    ``resource`` is ``cpu``, ``memory`` or ``io``. The averages are percentages
    of wall time over 10, 60 and 300 s; the totals are stall time in
    microseconds. ``full`` is None where the file has no ``full`` line (cpu
    before Linux 5.13).
    """

    resource: str
    some_avg10: float | None
    some_avg60: float | None
    some_avg300: float | None
    some_total_us: int | None
    full_avg10: float | None
    full_avg60: float | None
    full_avg300: float | None
    full_total_us: int | None


class UptimeRow(NamedTuple):
    """/proc/uptime: seconds since boot, and idle seconds summed over CPUs."""

    uptime_s: float | None
    idle_s: float | None


class CgroupRow(NamedTuple):
    """The cgroup v2 files of one cgroup (``Documentation/admin-guide/cgroup-v2.rst``).

    A container's own view of its limits and use. None where a file or a key
    is absent (a controller not enabled), and for the limits ``max``
    (unlimited): ``cpu_max_quota_us`` and ``memory_max_bytes``. The io
    counters are summed over the devices of ``io.stat``.
    """

    cgroup: str
    cpu_usage_usec: int | None
    cpu_user_usec: int | None
    cpu_system_usec: int | None
    cpu_nr_periods: int | None
    cpu_nr_throttled: int | None
    cpu_throttled_usec: int | None
    cpu_max_quota_us: int | None
    cpu_max_period_us: int | None
    memory_current_bytes: int | None
    memory_max_bytes: int | None
    memory_anon_bytes: int | None
    memory_file_bytes: int | None
    memory_kernel_bytes: int | None
    memory_shmem_bytes: int | None
    memory_pgfault: int | None
    memory_pgmajfault: int | None
    io_rbytes: int | None
    io_wbytes: int | None
    io_rios: int | None
    io_wios: int | None
    pids_current: int | None


# ------------------------------------------------------------------ records


@dataclass(frozen=True, slots=True, kw_only=True)
class HostSample:
    """Everything read from one host's /proc at one tick.

    A source that failed is empty (or None) here and named in ``errors``, so
    one malformed file never costs the rest of the sample.
    """

    host: str
    time_ns: int
    cpu: tuple[CpuRow, ...] = ()
    stat: StatRow | None = None
    mem: tuple[int | None, ...] | None = None
    vmstat: tuple[int | None, ...] | None = None
    disk: tuple[DiskRow, ...] = ()
    net: tuple[NetRow, ...] = ()
    load: LoadRow | None = None
    errors: tuple[str, ...] = ()
    psi: tuple[PsiRow, ...] = ()
    uptime: UptimeRow | None = None
    cgroup: CgroupRow | None = None


class ProcessRow(NamedTuple):
    """One process among the top N by CPU or by memory (``ProcessSample``).

    ``cpu_percent`` is as top shows it: user + system CPU time between two
    collections over the wall time between them, 100 for one CPU kept busy
    (None when the process was not seen at the previous collection and did
    not start since). ``rss_bytes`` is resident memory; ``read_bytes`` and
    ``write_bytes`` the storage I/O of ``/proc/<pid>/io`` (None when that file
    cannot be read: another user's process, without privileges).
    """

    pid: int
    #: The kernel's name of the process (``comm``, at most 15 bytes).
    name: str
    #: The command line, its arguments joined by spaces; ``[name]`` for a kernel thread.
    command: str
    #: The real user's name (the uid as text when it has no name); None if unread.
    user: str | None
    cpu_percent: float | None
    rss_bytes: int
    read_bytes: int | None
    write_bytes: int | None
    threads: int
    #: 1-based place in the top by CPU %, and in the top by RSS; None when not in it.
    cpu_rank: int | None
    mem_rank: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcessSample:
    """The top processes of one host at one tick, by CPU % and by resident memory.

    ``processes`` is the union of both tops, ordered by CPU rank, then memory
    rank. ``seen`` counts the processes listed; ``vanished`` those that exited
    between the listing and their reading (not an error).
    """

    host: str
    time_ns: int
    processes: tuple[ProcessRow, ...] = ()
    seen: int = 0
    vanished: int = 0
    errors: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class HostInventory:
    """What a host is made of: CPUs, OS, kernel, disks, NICs and mounts.

    ``document`` is a JSON object (see ``collectors/host/inventory.py``); a
    part that could not be read is missing from it and named in ``errors``.
    """

    host: str
    time_ns: int
    document: str
    errors: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class CollectionEvent:
    """One collection by one collector: what ``collection_log`` keeps.

    ``status`` is ``ok``, ``partial`` (some sources failed), ``error``,
    ``timeout`` or ``skipped``.
    """

    source: str
    host: str
    started_ns: int
    duration_ns: int
    status: str
    records: int = 0
    error: str | None = None
    stale: bool = False
    details: tuple[tuple[str, str], ...] = field(default=())


@dataclass(frozen=True, slots=True, kw_only=True)
class CallRecord:
    """One call of a handler wrapped by :class:`collectbus.calls.CallRecorder`.

    ``started_ns`` is wall-clock time; ``elapsed_ns`` was measured on the
    monotonic performance counter. A failed call has ``error_type`` (the
    exception's qualified class name), its message and a short traceback
    (innermost frames, ``file:line in function``, no source lines). ``args``
    and ``result`` are truncated text, present only when the collector
    captures them; a record never holds a live reference to either.
    """

    handler: str
    qualname: str
    host: str
    pid: int
    thread_id: int
    started_ns: int
    elapsed_ns: int
    error_type: str | None = None
    error_message: str | None = None
    traceback: str | None = None
    args: str | None = None
    result: str | None = None

    @property
    def ok(self) -> bool:
        """True when the call returned (or its generator was exhausted or closed)."""
        return self.error_type is None


# ---------------------------------------------------------------- scheduler
#
# One scheduler-neutral model for PBS Pro/OpenPBS and Slurm. ``state`` is the
# neutral state (see JOB_STATES); ``native_state`` keeps the scheduler's own
# letter or word. Times are UTC nanoseconds, None when the scheduler has not
# set them. ``raw_json`` is the entity exactly as the scheduler described it,
# re-serialised as JSON, so nothing it said is lost to the model.

# JOB_STATES, FINAL_JOB_STATES: collectbus.states (re-exported above).


@dataclass(frozen=True, slots=True, kw_only=True)
class JobRecord:
    """One job as one collection saw it.

    A job is identified by ``(cluster, job_id, submit_ns)``: schedulers reuse
    ids (Slurm after a clean start, PBS after its sequence wraps).
    ``eligible_seconds`` is PBS's own accrued ``eligible_time``; Slurm has no
    such figure. ``exit_status`` is the job's exit code, ``exit_signal`` the
    signal that killed it; PBS's negative codes are kept as they are.
    """

    cluster: str
    scheduler: str
    job_id: str
    submit_ns: int | None
    observed_ns: int
    state: str
    native_state: str
    substate: str | None = None
    name: str | None = None
    user: str | None = None
    account: str | None = None
    queue: str | None = None
    priority: int | None = None
    array_parent: str | None = None
    exec_hosts: tuple[str, ...] = ()
    exec_vnode: str | None = None
    nodes_requested: int | None = None
    cpus_requested: int | None = None
    gpus_requested: int | None = None
    mem_requested_bytes: int | None = None
    walltime_requested_seconds: int | None = None
    walltime_used_seconds: int | None = None
    cpu_used_seconds: int | None = None
    mem_used_bytes: int | None = None
    eligible_ns: int | None = None
    eligible_seconds: int | None = None
    start_ns: int | None = None
    end_ns: int | None = None
    exit_status: int | None = None
    exit_signal: int | None = None
    comment: str | None = None
    raw_json: str = "{}"


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeRecord:
    """One compute node (or PBS vnode) as one collection saw it.

    ``state`` is neutral: ``idle``, ``mixed``, ``allocated``, ``down``,
    ``drained``, ``offline``, ``reserved`` or ``unknown``; ``native_state``
    keeps the scheduler's own text (``job-busy``, ``IDLE+DRAIN``, ...).
    """

    cluster: str
    scheduler: str
    node: str
    observed_ns: int
    state: str
    native_state: str
    partitions: tuple[str, ...] = ()
    cpus_total: int | None = None
    cpus_allocated: int | None = None
    gpus_total: int | None = None
    gpus_allocated: int | None = None
    mem_total_bytes: int | None = None
    mem_allocated_bytes: int | None = None
    jobs: tuple[str, ...] = ()
    comment: str | None = None
    raw_json: str = "{}"


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueRecord:
    """One queue (PBS) or partition (Slurm) as one collection saw it.

    ``state_counts`` holds the scheduler's count of jobs per native state
    (PBS ``state_count``), as pairs in the scheduler's order.
    """

    cluster: str
    scheduler: str
    queue: str
    observed_ns: int
    enabled: bool | None = None
    started: bool | None = None
    jobs_total: int | None = None
    jobs_queued: int | None = None
    jobs_running: int | None = None
    jobs_held: int | None = None
    state_counts: tuple[tuple[str, int], ...] = ()
    raw_json: str = "{}"


@dataclass(frozen=True, slots=True, kw_only=True)
class SystemRecord:
    """The scheduler server as a whole (PBS ``qstat -B``; Slurm's cluster)."""

    cluster: str
    scheduler: str
    server: str
    observed_ns: int
    server_state: str | None = None
    jobs_total: int | None = None
    state_counts: tuple[tuple[str, int], ...] = ()
    raw_json: str = "{}"


# ------------------------------------------------------------- reservations
#
# Advance reservations (PBS ``pbs_rstat -f``, Slurm ``scontrol show
# reservation``), one neutral model as for jobs: ``state`` is neutral (see
# RESERVATION_STATES), ``native_state`` the scheduler's own word.

# RESERVATION_STATES, FINAL_RESERVATION_STATES: collectbus.states (re-exported above).


@dataclass(frozen=True, slots=True, kw_only=True)
class ReservationRecord:
    """One advance reservation as one collection saw it.

    A reservation is identified by ``(cluster, resv_id, created_ns)``: PBS
    gives its creation time (``ctime``); Slurm gives none, and a record
    without one belongs to the live reservation of that id (see
    :mod:`collectbus.jobtrack.reservations`). ``nodes`` are the node (PBS
    vnode) names it holds; ``users`` its access list as the scheduler wrote
    it (PBS ``Authorized_Users`` entries keep their ``+``/``-`` and host).
    """

    cluster: str
    scheduler: str
    resv_id: str
    observed_ns: int
    state: str
    native_state: str
    substate: str | None = None
    name: str | None = None
    owner: str | None = None
    queue: str | None = None
    users: tuple[str, ...] = ()
    nodes: tuple[str, ...] = ()
    nodes_requested: int | None = None
    cpus_requested: int | None = None
    start_ns: int | None = None
    end_ns: int | None = None
    duration_seconds: int | None = None
    created_ns: int | None = None
    modified_ns: int | None = None
    raw_json: str = "{}"


# ---------------------------------------------------------------- job usage

#: Where a job's usage was read: its cgroup, or the sum over its processes.
JOB_USAGE_SOURCES = ("cgroup", "proctree")


@dataclass(frozen=True, slots=True, kw_only=True)
class JobUsageSample:
    """What one batch job used on one node, at one tick.

    Read by the ``jobusage`` collector (:mod:`collectbus.collectors.jobusage`)
    from the job's cgroup (``source="cgroup"``) or, where the job has none,
    summed over its processes (``source="proctree"``). ``cpu_seconds``,
    ``read_bytes`` and ``write_bytes`` are counters since the job began on
    this node (a process tree counts only the processes alive, and the
    children they reaped); ``mem_bytes`` is the memory in use now,
    ``mem_peak_bytes`` the most seen (the kernel's high-water mark for a
    cgroup; for a process tree the largest sum this collector saw).
    ``processes`` counts the job's processes. None where a value could not be
    read. ``job_id`` is the scheduler's id as its cgroup or environment names
    it (Slurm ``123``, PBS ``123.server``).
    """

    cluster: str
    job_id: str
    host: str
    time_ns: int
    source: str
    cpu_seconds: float | None = None
    mem_bytes: int | None = None
    mem_peak_bytes: int | None = None
    read_bytes: int | None = None
    write_bytes: int | None = None
    processes: int | None = None


Record = (
    HostSample
    | ProcessSample
    | HostInventory
    | CollectionEvent
    | CallRecord
    | JobRecord
    | NodeRecord
    | QueueRecord
    | SystemRecord
    | ReservationRecord
    | JobUsageSample
)

#: ``CollectionEvent.details`` keys of a jobs collection; the contract is
#: described in :mod:`collectbus.collectors.base` ("Job listings").
JOB_LISTING = "job_listing"
CLUSTER_DETAIL = "cluster"
#: The detail of a jobs collection whose listing of live jobs is complete.
COMPLETE_LISTING = (JOB_LISTING, "complete")
#: The detail of a reservations collection whose listing is complete: with the
#: ``("cluster", NAME)`` detail, reservations of that cluster absent from it are gone.
RESERVATION_LISTING = "reservation_listing"
COMPLETE_RESERVATIONS = (RESERVATION_LISTING, "complete")
