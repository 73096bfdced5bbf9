"""Configuration: one TOML file, validated at start-up, with overrides.

Where each setting comes from, highest first:

1. command-line flags (``--db``, ``--proc-root``, ``--interval``, ...);
2. environment variables (:data:`ENV_OVERRIDES`, e.g. ``COLLECTBUS_DB_URL``);
3. the config file: ``--config PATH``, else ``$COLLECTBUS_CONFIG``, else the
   first that exists of ``./collectbus.toml``, ``$XDG_CONFIG_HOME/collectbus/collectbus.toml``
   (``~/.config/...``) and ``/etc/collectbus/collectbus.toml``;
4. the defaults below.

Only one file is read: the first found. Unknown keys are errors, and every
error names the file and the dotted key. Durations are seconds, or strings
such as ``"500ms"``, ``"10s"``, ``"5m"``, ``"1h"``, ``"7d"``.

Secrets never come from the command line: a database password is read from
``$COLLECTBUS_DB_PASSWORD`` or from the file named by ``store.password_file``
and put into the URL in memory only; :func:`mask_url` hides it in every log.

Finding and reading the file, and the store's settings alone (for commands
that only read the store, without pydantic), are in :mod:`collectbus.configfile`.
"""

from __future__ import annotations

import difflib
import os
import re
import socket
from collections.abc import Mapping
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictBool,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)

from collectbus.collectors.host.collector import FAMILIES
from collectbus.collectors.host.filters import DEFAULT_DISK_EXCLUDE, DEFAULT_MAX_DEVICES
from collectbus.collectors.process.collector import DEFAULT_TOP
from collectbus.configfile import (
    DEFAULT_DB_URL,
    DEFAULT_HOST_TIER,
    DEFAULT_TIERS,
    ENV_OVERRIDES,
    EngineOptions,
    aggregate_refusal,
    candidate_files,
    check_url,
    parse_duration,
    read_config_file,
    with_password,
)
from collectbus.errors import ConfigError
from collectbus.pidfile import default_log_file, default_pid_file
from collectbus.store.deadline import DEFAULT_STATEMENT_TIMEOUT_S

__all__ = [
    "DEFAULT_DB_URL",
    "ENV_OVERRIDES",
    "Config",
    "candidate_files",
    "database_url",
    "load_config",
    "parse_duration",
]

Duration = Annotated[float, BeforeValidator(parse_duration)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BusConfig(_Section):
    #: Interval of each tier, in seconds.
    tiers: dict[str, Duration] = Field(default_factory=lambda: dict(DEFAULT_TIERS))
    #: Each tick starts up to ``jitter`` x interval late, at random, so that
    #: many hosts do not read and write in the same instant.
    jitter: float = Field(default=0.0, ge=0.0, lt=1.0)
    workers: int = Field(default=4, ge=1, le=64)
    stop_deadline: Duration = 5.0


class HostConfig(_Section):
    enabled: StrictBool = True
    proc_root: str = "/proc"
    tier: str = DEFAULT_HOST_TIER
    interval: Duration | None = None
    timeout: Duration = 5.0
    #: sysfs, where the disk filter asks whether a device is a partition.
    sys_root: str = "/sys"
    #: cgroup v2 files of the collector's own cgroup: in a container ("auto"), always, never.
    cgroup: Literal["auto", "on", "off"] = "auto"
    cgroup_root: str = "/sys/fs/cgroup"
    #: Regular expressions on device names (searched); see collectors/host/filters.py.
    disk_include: list[str] = Field(default_factory=list)
    disk_exclude: list[str] = Field(default_factory=lambda: list(DEFAULT_DISK_EXCLUDE))
    disk_partitions: StrictBool = False
    net_include: list[str] = Field(default_factory=list)
    net_exclude: list[str] = Field(default_factory=list)
    #: The most disks, and the most interfaces, collected; past it: dropped, counted, logged once.
    max_devices: int = Field(default=DEFAULT_MAX_DEVICES, ge=1)
    #: Families read on intervals of their own (``cpu = "1s"``), one collector
    #: per interval; the others stay in ``host``, at ``interval`` or the tier's.
    families: dict[str, Duration] = Field(default_factory=dict)

    @field_validator("families")
    @classmethod
    def _families(cls, value: dict[str, float]) -> dict[str, float]:
        for family, seconds in value.items():
            if family not in FAMILIES:
                raise ValueError(f"unknown family {family!r} (known: {', '.join(FAMILIES)})")
            if seconds <= 0:
                raise ValueError(f"{family}: the interval must be positive, got {seconds}")
        return value

    @field_validator("disk_include", "disk_exclude", "net_include", "net_exclude")
    @classmethod
    def _patterns(cls, value: list[str]) -> list[str]:
        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as err:
                raise ValueError(f"{pattern!r} is not a regular expression: {err}") from err
        return value


class HostInventoryConfig(_Section):
    enabled: StrictBool = True
    tier: str = "inventory"
    timeout: Duration = 10.0


class ProcessesConfig(_Section):
    """The top processes by CPU and memory (``collectors/process``); on the bus only."""

    enabled: StrictBool = False
    tier: str = "system"
    interval: Duration | None = None
    timeout: Duration = 5.0
    #: Processes in each top (by CPU %, by RSS).
    top: int = Field(default=DEFAULT_TOP, ge=1, le=10_000)


class SlurmIntervals(_Section):
    """How often each Slurm entity is collected."""

    jobs: Duration = 60.0
    nodes: Duration = 300.0
    partitions: Duration = 900.0
    #: ``scontrol show reservation -o``.
    reservations: Duration = 300.0


class SlurmConfig(_Section):
    """``[collectors.slurm]``: the Slurm jobs, nodes and partitions collectors."""

    enabled: StrictBool = False
    #: The name records carry; unset takes Slurm's ClusterName.
    cluster: str | None = None
    #: The folder of squeue, sinfo, sacct and scontrol; unset looks them up in PATH.
    bin_dir: str | None = None
    #: Run the commands on this host through ssh (BatchMode), e.g. a login node.
    ssh_host: str | None = None
    #: How long each command may run.
    timeout: Duration = 30.0
    #: Where finished jobs come from: auto, slurmdbd (sacct --json), jobcomp (sacct -c), none.
    accounting: Literal["auto", "slurmdbd", "jobcomp", "none"] = "auto"
    #: How far back the first accounting query looks.
    sacct_lookback: Duration = 3600.0
    #: Keep only these users' jobs, and jobs in these states; empty keeps all.
    users: list[str] = Field(default_factory=list)
    states: list[str] = Field(default_factory=list)
    tier: str = "inventory"
    intervals: SlurmIntervals = Field(default_factory=SlurmIntervals)

    @model_validator(mode="before")
    @classmethod
    def _moved_intervals(cls, data: object) -> object:
        if isinstance(data, dict):
            for entity in ("jobs", "nodes", "partitions"):
                if f"{entity}_interval" in data:
                    raise ValueError(
                        f"{entity}_interval is now [collectors.slurm.intervals] {entity}"
                    )
        return data


class PbsIntervals(_Section):
    """How often each PBS entity is collected."""

    jobs: Duration = 60.0
    nodes: Duration = 300.0
    queues: Duration = 900.0
    server: Duration = 900.0
    #: ``pbs_rstat -f``.
    reservations: Duration = 300.0


class PbsConfig(_Section):
    """PBS Professional / OpenPBS (``collectors/pbs/README.md``)."""

    enabled: StrictBool = False
    #: The name records carry, so that several clusters share one database.
    cluster: str = "pbs"
    #: Folder of qstat and pbsnodes; None: found on the PATH (of the login node).
    bin_dir: str | None = None
    #: The PBS server to ask (``qstat @server``); None: the clients' default.
    server: str | None = None
    #: Run the commands on this host with ``ssh -o BatchMode=yes``.
    ssh_host: str | None = None
    ssh_command: str = "ssh"
    #: The server keeps job history (``job_history_enable``): use ``qstat -x``.
    history: StrictBool = False
    #: The zone the server prints its times in (IANA name); None: the local zone.
    timezone: str | None = None
    #: Deadline of each command.
    timeout: Duration = 30.0
    #: Where output that cannot be read even after repair is kept.
    spool_dir: str | None = "pbs-spool"
    #: Give unchanged jobs fresh records each collection. Off: an unchanged job's
    #: record is the one given last time, and the store takes the collection's time.
    renew_unchanged: StrictBool = False
    tier: str = "inventory"
    intervals: PbsIntervals = Field(default_factory=PbsIntervals)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError) as err:
                raise ValueError(f"unknown time zone {value!r} (an IANA name)") from err
        return value

    def settings(self) -> dict[str, str | bool | float | None]:
        """The keyword arguments of the PBS collectors."""
        return self.model_dump(exclude={"enabled", "tier", "intervals"})


class JobUsageConfig(_Section):
    """``[collectors.jobusage]``: what each batch job on this node uses
    (``collectors/jobusage/README.md``); procfs is ``[collectors.host]``'s ``proc_root``."""

    enabled: StrictBool = False
    #: The cluster the node's jobs belong to, as the jobs collectors name it.
    cluster: str | None = None
    #: auto: each job from its cgroup, else from its processes; cgroup or proctree only.
    mode: Literal["auto", "cgroup", "proctree"] = "auto"
    cgroup_root: str = "/sys/fs/cgroup"
    tier: str = "system"
    interval: Duration | None = None
    timeout: Duration = 10.0

    @model_validator(mode="after")
    def _named_cluster(self) -> JobUsageConfig:
        if self.enabled and not self.cluster:
            raise ValueError("cluster: name the cluster whose jobs run here (enabled needs it)")
        return self


class CollectorsConfig(_Section):
    host: HostConfig = Field(default_factory=HostConfig)
    slurm: SlurmConfig = Field(default_factory=SlurmConfig)
    pbs: PbsConfig = Field(default_factory=PbsConfig)
    host_inventory: HostInventoryConfig = Field(default_factory=HostInventoryConfig)
    jobusage: JobUsageConfig = Field(default_factory=JobUsageConfig)
    processes: ProcessesConfig = Field(default_factory=ProcessesConfig)


class StoreConfig(_Section):
    url: str = DEFAULT_DB_URL
    password_file: str | None = None
    #: Samples older than this are compacted into chunks.
    compact_after: Duration = 3600.0
    #: How often the daemon runs compaction.
    compact_every: Duration = 600.0
    #: Bounded queue between the bus and the database writer.
    queue_size: int = Field(default=10_000, ge=1)
    #: A read or write that blocks longer than this fails, and the daemon
    #: treats it as an outage (buffers and retries); see store/deadline.py.
    statement_timeout: Duration = DEFAULT_STATEMENT_TIMEOUT_S
    #: Connections the pool keeps open; unset: SQLAlchemy's default (5).
    pool_size: StrictInt | None = Field(default=None, ge=1)
    #: Connections opened beyond ``pool_size`` under load; unset: 10.
    max_overflow: StrictInt | None = Field(default=None, ge=0)
    #: Log every SQL statement (INFO lines of the logger ``sqlalchemy.engine``).
    echo: StrictBool = False

    def engine_options(self) -> EngineOptions:
        """The keyword arguments of :func:`collectbus.store.store.make_engine`."""
        return EngineOptions(
            pool_size=self.pool_size, max_overflow=self.max_overflow, echo=self.echo
        )


class RetentionConfig(_Section):
    """How long the history tables keep rows, in days; unset keeps everything.

    A job is deleted only once it is finished and none of its history is left.
    """

    job_history_days: float | None = Field(default=None, gt=0)
    snapshot_days: float | None = Field(default=90.0, gt=0)
    jobs_days: float | None = Field(default=None, gt=0)
    #: ``collection_log``: one row per collection of every collector.
    collection_log_days: float | None = Field(default=90.0, gt=0)
    #: ``quarantine``: the values and rows the store refused, with the reason.
    quarantine_days: float | None = Field(default=90.0, gt=0)
    #: How often the daemon applies these limits.
    every: Duration = 3600.0


class PrivacyConfig(_Section):
    #: Scrub personal fields (owner, account, job name, e-mail, comment,
    #: environment, paths) from stored raw scheduler payloads.
    scrub: StrictBool = False


class DaemonConfig(_Section):
    """Where the daemon's files are; by default one place per user, found from
    any folder (:func:`collectbus.pidfile.default_pid_file`)."""

    pid_file: str = Field(default_factory=default_pid_file)
    log_file: str = Field(default_factory=default_log_file)


FilterValue = str | int | float | bool


class AggregateConfig(_Section):
    """One ``[[aggregates]]`` entry: an incrementally kept GROUP BY (see
    :mod:`collectbus.aggregate`). With ``source``, a table of another SQLite or
    PostgreSQL database is tailed read-only (sqltail)."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,47}$")
    table: str
    #: Another database's URL; leave out for a table of the collectbus store.
    source: str | None = None
    id_column: str = "id"
    updated_column: str | None = None
    keys: list[str] = Field(default_factory=list)
    measures: list[str] = Field(default_factory=list)
    filters: dict[str, FilterValue | list[FilterValue]] = Field(default_factory=dict)
    error_column: str | None = None
    error_values: list[FilterValue] = Field(default_factory=list)
    open_rows: int = Field(default=10_000, ge=0)
    refresh_every: Duration | None = None
    batch_rows: int = Field(default=200_000, ge=1)
    #: Another database's table: an SQL condition true while a row can still
    #: change (``status = 'running'``), or a column NULL until the row is final.
    open_when: str | None = None
    open_column: str | None = None
    #: Ids of closed rows compared with the source per update (a rotating sweep).
    verify_rows: int = Field(default=8_192, ge=0)

    @model_validator(mode="after")
    def _table_can_be_aggregated(self) -> AggregateConfig:
        refusal = aggregate_refusal(self.table, external=self.source is not None)
        if refusal is not None:
            raise ValueError(refusal)
        return self


#: One NATS subject token: no dot, wildcard or white space.
SUBJECT_TOKEN = r"^[A-Za-z0-9_-]{1,64}$"
#: Subject tokens joined by dots (a subject prefix).
SUBJECT_PREFIX = r"^[A-Za-z0-9_-]{1,64}(\.[A-Za-z0-9_-]{1,64}){0,7}$"
NATS_SCHEMES = ("nats", "tls", "ws", "wss")


class NatsSinkConfig(_Section):
    """``[sink.nats]``: publish every collection to NATS JetStream (an agent of
    a fleet), and where ``collectbus ingest`` reads them from (see
    :mod:`collectbus.fleet`). Secrets come from files only."""

    #: Server URLs, comma-separated; no password in them (``password_file``).
    url: str = "nats://127.0.0.1:4222"
    #: The JetStream stream, made if missing, over ``<subject_prefix>.>``.
    stream: str = Field(default="COLLECTBUS", pattern=SUBJECT_TOKEN)
    subject_prefix: str = Field(default="collectbus", pattern=SUBJECT_PREFIX)
    #: The second token of every subject: ``<prefix>.<cluster>.<source>.<host>``.
    cluster: str = Field(default="default", pattern=SUBJECT_TOKEN)
    #: Refused messages go to ``<dead_letter_prefix>.<cluster>.<source>.<host>``.
    dead_letter_prefix: str = Field(default="collectbus-dead", pattern=SUBJECT_PREFIX)
    #: Also write the local store (true), or publish only (false).
    local_store: StrictBool = True
    #: Collections kept while NATS cannot be reached; past it the oldest are dropped.
    buffer: int = Field(default=10_000, ge=1)
    #: How long a publish waits for JetStream's ack.
    publish_timeout: Duration = 5.0
    #: A user's password (the URL names the user), a ``.creds`` file (JWT and
    #: seed), or an nkey seed file: at most one of the last two.
    password_file: str | None = None
    credentials_file: str | None = None
    nkey_seed_file: str | None = None
    #: TLS: the CA that signed the server's certificate; a client certificate and key.
    tls_ca_file: str | None = None
    tls_cert_file: str | None = None
    tls_key_file: str | None = None

    @field_validator("url")
    @classmethod
    def _servers(cls, value: str) -> str:
        from urllib.parse import urlsplit

        for server in nats_servers(value):
            try:
                parts = urlsplit(server)
                parts.port  # noqa: B018 -- parsing the port is what raises on "host:abc"
            except ValueError as err:
                raise ValueError(f"{_mask_nats(server)!r} is not a NATS URL: {err}") from err
            if parts.scheme not in NATS_SCHEMES or not parts.hostname:
                raise ValueError(
                    f"{_mask_nats(server)!r} is not a NATS URL (nats://host:4222, tls://...)"
                )
            if parts.password is not None:
                raise ValueError(
                    "a password in the URL would end up in logs and process lists; "
                    "use sink.nats.password_file"
                )
        return value

    @field_validator(
        "password_file",
        "credentials_file",
        "nkey_seed_file",
        "tls_ca_file",
        "tls_cert_file",
        "tls_key_file",
    )
    @classmethod
    def _readable(cls, value: str | None) -> str | None:
        if value is not None and not os.access(value, os.R_OK):
            reason = "no such file" if not os.path.exists(value) else "not readable"
            raise ValueError(f"{value}: {reason}")
        return value

    @model_validator(mode="after")
    def _one_identity(self) -> NatsSinkConfig:
        if self.credentials_file and self.nkey_seed_file:
            raise ValueError("give credentials_file or nkey_seed_file, not both")
        if bool(self.tls_cert_file) != bool(self.tls_key_file):
            raise ValueError("tls_cert_file and tls_key_file go together")
        if self.dead_letter_prefix == self.subject_prefix or self.dead_letter_prefix.startswith(
            self.subject_prefix + "."
        ):
            raise ValueError(
                "dead_letter_prefix must be outside subject_prefix, or ingest would read "
                "its own dead letters"
            )
        return self


def nats_servers(url: str) -> list[str]:
    """The server URLs of ``sink.nats.url`` (comma-separated)."""
    return [s.strip() for s in url.split(",") if s.strip()]


def _mask_nats(url: str) -> str:
    return re.sub(r"://([^:/@]*):[^@]*@", r"://\1:***@", url)


class SinkConfig(_Section):
    """``[sink]``: where collections go besides (or instead of) the local store."""

    nats: NatsSinkConfig | None = None


class Config(_Section):
    #: The name this host's records carry; the system host name by default.
    host: str = Field(default_factory=socket.gethostname)
    bus: BusConfig = Field(default_factory=BusConfig)
    collectors: CollectorsConfig = Field(default_factory=CollectorsConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    daemon: DaemonConfig = Field(default_factory=DaemonConfig)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig)
    sink: SinkConfig = Field(default_factory=SinkConfig)
    aggregates: list[AggregateConfig] = Field(default_factory=list)

    #: Where the settings came from (a file name, or "defaults").
    _source: str = PrivateAttr(default="defaults")

    @property
    def source(self) -> str:
        return self._source

    @model_validator(mode="after")
    def _tier_exists(self) -> Config:
        tier = self.collectors.host.tier
        if tier not in self.bus.tiers:
            known = ", ".join(sorted(self.bus.tiers))
            raise ValueError(f"collectors.host.tier: unknown tier {tier!r} (known: {known})")
        pbs_tier = self.collectors.pbs.tier
        if self.collectors.pbs.enabled and pbs_tier not in self.bus.tiers:
            known = ", ".join(sorted(self.bus.tiers))
            raise ValueError(f"collectors.pbs.tier: unknown tier {pbs_tier!r} (known: {known})")
        slurm_tier = self.collectors.slurm.tier
        if self.collectors.slurm.enabled and slurm_tier not in self.bus.tiers:
            known = ", ".join(sorted(self.bus.tiers))
            raise ValueError(f"collectors.slurm.tier: unknown tier {slurm_tier!r} (known: {known})")
        inventory = self.collectors.host_inventory
        if inventory.enabled and inventory.tier not in self.bus.tiers:
            known = ", ".join(sorted(self.bus.tiers))
            raise ValueError(
                f"collectors.host_inventory.tier: unknown tier {inventory.tier!r} (known: {known})"
            )
        jobusage = self.collectors.jobusage
        if jobusage.enabled and jobusage.tier not in self.bus.tiers:
            known = ", ".join(sorted(self.bus.tiers))
            raise ValueError(
                f"collectors.jobusage.tier: unknown tier {jobusage.tier!r} (known: {known})"
            )
        nats = self.sink.nats
        scheduler = self.collectors.pbs.enabled or self.collectors.slurm.enabled
        if nats is not None and not nats.local_store and scheduler:
            raise ValueError(
                "sink.nats.local_store: scheduler listings are written to the local store "
                "only (the job tracker diffs them there); keep local_store = true on the head node"
            )
        processes = self.collectors.processes
        if processes.enabled and processes.tier not in self.bus.tiers:
            known = ", ".join(sorted(self.bus.tiers))
            raise ValueError(
                f"collectors.processes.tier: unknown tier {processes.tier!r} (known: {known})"
            )
        names = [a.name for a in self.aggregates]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise ValueError(f"aggregates.{i}.name: {name!r} is defined twice")
        return self


def _set_dotted(data: dict[str, Any], dotted: str, value: object) -> None:
    *parents, leaf = dotted.split(".")
    node = data
    for key in parents:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{dotted}: {key} must be a table")
        node = child
    node[leaf] = value


def _did_you_mean(loc: tuple[int | str, ...]) -> str:
    """``; did you mean 'x'?`` for an unknown key close to a known one, else ''."""
    model: object = Config
    for part in loc[:-1]:
        if isinstance(part, int):
            continue  # a list's item: the model is the list's
        fields = getattr(model, "model_fields", None)
        if fields is None or part not in fields:
            return ""
        model = _model_of(fields[part].annotation)
    fields = getattr(model, "model_fields", None)
    if fields is None:
        return ""
    close = difflib.get_close_matches(str(loc[-1]), list(fields), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _model_of(annotation: object) -> object:
    """The model class an annotation holds: itself, or a list's item type."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


def _format_validation(
    source: str, origins: Mapping[str, str], err: ValidationError
) -> ConfigError:
    errors = err.errors()
    # A misspelt key is the likeliest cause of the others (a required key
    # "missing"): name it first.
    first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    key = ".".join(str(p) for p in first["loc"]) or "(top level)"
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        msg = "unknown key" + _did_you_mean(first["loc"])
    if not first["loc"] and ": " in msg:
        # A check across keys names its key in the message.
        key, _, msg = msg.partition(": ")
    more = f" (and {err.error_count() - 1} more)" if err.error_count() > 1 else ""
    where = origins.get(key, source)
    return ConfigError(
        f"{where}: {key}: {msg}{more}", hint="see the Configuration section of the README"
    )


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    overrides: Mapping[str, object] | None = None,
    env: Mapping[str, str] | None = None,
) -> Config:
    """Read, merge and validate the configuration.

    ``overrides`` maps dotted keys to values from command-line flags; None
    values are ignored, so a flag that was not given changes nothing.
    """
    env = os.environ if env is None else env
    data, source = read_config_file(path, env)
    # Which layer set each overridden key, so that an error blames the right one.
    origins: dict[str, str] = {}
    for var, dotted in ENV_OVERRIDES.items():
        if env.get(var):
            _set_dotted(data, dotted, env[var])
            origins[dotted] = f"environment variable {var}"
    for dotted, value in (overrides or {}).items():
        if value is not None:
            _set_dotted(data, dotted, value)
            origins[dotted] = "command line"
    try:
        config = Config.model_validate(data)
    except ValidationError as err:
        raise _format_validation(source, origins, err) from err
    check_url(config.store.url, origins.get("store.url", source))
    for i, aggregate in enumerate(config.aggregates):
        if aggregate.source is not None:
            check_url(aggregate.source, source, key=f"aggregates.{i}.source ({aggregate.name})")
    config._source = source
    return config


def database_url(config: Config, env: Mapping[str, str] | None = None) -> str:
    """The store URL with its password filled in from the environment or a file."""
    env = os.environ if env is None else env
    return with_password(config.store.url, config.store.password_file, env)
