"""The config file, and the store's settings read without pydantic.

:mod:`collectbus.config` validates the whole configuration with pydantic,
which takes a tenth of a second to import and build: fine for the daemon,
the collectors and the server, too slow for a command that only reads the
store. :func:`store_settings` finds the same file (:func:`read_config_file`),
applies the same overrides (flag > environment > file > default) and checks
the ``[store]`` keys a reader uses with the same rules and messages. A value
it cannot vouch for (a key it does not know, a value of another type) makes
it return None, and the caller validates in full, which names the error.
The other sections are checked by the commands that use them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

from collectbus.errors import ConfigError
from collectbus.urls import mask_url

DEFAULT_DB_URL = "sqlite:///collectbus.db"
#: The bus's tiers and their intervals in seconds, unless ``[bus] tiers`` says otherwise.
DEFAULT_TIERS = {"inventory": 300.0, "system": 10.0, "fast": 1.0}
#: The tier of the host collector, unless ``[collectors.host] tier`` says otherwise.
DEFAULT_HOST_TIER = "system"
SUPPORTED_DATABASES = ("sqlite", "postgresql")

#: Environment variables and the dotted key each overrides.
ENV_OVERRIDES: dict[str, str] = {
    "COLLECTBUS_DB_URL": "store.url",
    "COLLECTBUS_HOST": "host",
    "COLLECTBUS_PROC_ROOT": "collectors.host.proc_root",
    "COLLECTBUS_PID_FILE": "daemon.pid_file",
    "COLLECTBUS_LOG_FILE": "daemon.log_file",
}

#: The keys of ``[store]`` (:class:`collectbus.config.StoreConfig`; a unit test
#: compares the two). Any other key is left to the full validation.
STORE_KEYS = frozenset(
    {
        "url",
        "password_file",
        "compact_after",
        "compact_every",
        "queue_size",
        "statement_timeout",
        "pool_size",
        "max_overflow",
        "echo",
    }
)


class EngineOptions(TypedDict):
    """The database connection pool and SQL logging, as ``[store]`` sets them
    (the keyword arguments of :func:`collectbus.store.store.make_engine`)."""

    #: Connections the pool keeps open (None: SQLAlchemy's default, 5).
    pool_size: int | None
    #: Connections opened beyond ``pool_size`` under load (None: 10).
    max_overflow: int | None
    #: Log every SQL statement and its parameters (INFO, logger ``sqlalchemy.engine``).
    echo: bool


def engine_options(store: Mapping[str, object]) -> EngineOptions | None:
    """``pool_size``, ``max_overflow`` and ``echo`` of a ``[store]`` table,
    or None when one is not of the kind :class:`collectbus.config.StoreConfig`
    accepts (that validation then names it)."""
    size, overflow, echo = (store.get(k) for k in ("pool_size", "max_overflow", "echo"))
    if not (size is None or (type(size) is int and size >= 1)):
        return None
    if not (overflow is None or (type(overflow) is int and overflow >= 0)):
        return None
    if echo is not None and type(echo) is not bool:
        return None
    return EngineOptions(pool_size=size, max_overflow=overflow, echo=bool(echo))


#: Tables of the store that an ``[[aggregates]]`` entry cannot read, and why
#: (refused when the configuration is loaded, and by
#: :class:`collectbus.aggregate.spec.AggregateSpec`).
NOT_AGGREGATED = {
    "jobs": (
        "its rows have no id column to keep a checkpoint on (a job is keyed by cluster,"
        " job id and submit time, and its row is updated in place as the job changes);"
        " aggregate job_history (one row per change, with an id) instead,"
        " or use collectbus analyze"
    ),
}


def aggregate_refusal(table: str, *, external: bool) -> str | None:
    """Why ``table`` of the store cannot be aggregated, or None (a table of
    another database is that database's: never refused here)."""
    if external or table not in NOT_AGGREGATED:
        return None
    return f"table {table!r} cannot be aggregated incrementally: {NOT_AGGREGATED[table]}"


_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")


def parse_duration(value: object) -> float:
    """Seconds from a number or a string like ``"10s"``; raises ValueError."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string like '10s'")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION.match(value)):
        seconds = float(m.group(1)) * _UNITS[m.group(2) or "s"]
    else:
        raise ValueError(f"{value!r} is not a duration (examples: 10, '500ms', '10s', '5m', '1h')")
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    return seconds


def candidate_files(env: Mapping[str, str]) -> list[Path]:
    """The config files looked for, in order, when none is named."""
    xdg = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return [
        Path("collectbus.toml"),
        Path(xdg) / "collectbus" / "collectbus.toml",
        Path("/etc/collectbus/collectbus.toml"),
    ]


def read_config_file(
    path: str | os.PathLike[str] | None, env: Mapping[str, str]
) -> tuple[dict[str, Any], str]:
    """The parsed config file and its name; ``({}, "defaults")`` when there is none.

    ``path`` (``--config``), else ``$COLLECTBUS_CONFIG``, else the first of
    :func:`candidate_files` that exists; a named file that is missing, cannot
    be read or is not TOML is a :class:`ConfigError` naming it.
    """
    named = path or env.get("COLLECTBUS_CONFIG")
    files = [Path(named)] if named else candidate_files(env)
    for file in files:
        if named or file.is_file():
            import tomllib  # only with a file to read: it compiles its patterns on import

            try:
                with file.open("rb") as fh:
                    return tomllib.load(fh), str(file)
            except FileNotFoundError as err:
                raise ConfigError(f"{file}: config file not found") from err
            except OSError as err:
                raise ConfigError(f"{file}: cannot read: {err.strerror}") from err
            except tomllib.TOMLDecodeError as err:
                raise ConfigError(f"{file}: invalid TOML: {err}") from err
    return {}, "defaults"


def check_url(url: str, source: str, *, key: str = "store.url") -> None:
    """A :class:`ConfigError` naming ``source`` and ``key`` unless ``url`` is a
    SQLite or PostgreSQL URL without a password."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
        parsed.port  # noqa: B018 -- parsing the port is what raises on "host:abc"
    except (ArgumentError, ValueError) as err:
        raise ConfigError(
            f"{source}: {key}: {mask_url(url)!r} is not a database URL",
            hint="use sqlite:///path.db or postgresql://user@host/db",
        ) from err
    if parsed.get_backend_name() not in SUPPORTED_DATABASES:
        raise ConfigError(
            f"{source}: {key}: {parsed.get_backend_name()!r} databases are not supported",
            hint="use sqlite:///path.db or postgresql://user@host/db",
        )
    if parsed.password:
        raise ConfigError(
            f"{source}: {key}: a password in the URL would end up in logs and process lists",
            hint="set COLLECTBUS_DB_PASSWORD or store.password_file instead",
        )


def with_password(url: str, password_file: str | None, env: Mapping[str, str]) -> str:
    """``url`` with its password filled in from ``$COLLECTBUS_DB_PASSWORD`` or a file."""
    password = env.get("COLLECTBUS_DB_PASSWORD")
    if password is None and password_file:
        try:
            password = Path(password_file).read_text().strip()
        except OSError as err:
            raise ConfigError(
                f"store.password_file: cannot read {password_file}: {err.strerror}"
            ) from err
    if not password:
        return url
    from sqlalchemy.engine import make_url

    return make_url(url).set(password=password).render_as_string(hide_password=False)


@dataclass(frozen=True, slots=True)
class StoreSettings:
    """What a command that reads the store needs of the configuration."""

    #: The store URL, without its password.
    url: str
    password_file: str | None
    #: Seconds a read may block (``store.statement_timeout``).
    statement_timeout: float
    #: The pool and SQL logging (``store.pool_size``, ``max_overflow``, ``echo``).
    engine: EngineOptions = field(
        default_factory=lambda: EngineOptions(pool_size=None, max_overflow=None, echo=False)
    )

    def database_url(self, env: Mapping[str, str] | None = None) -> str:
        """The URL with its password filled in (see :func:`with_password`)."""
        return with_password(self.url, self.password_file, os.environ if env is None else env)


def store_settings(
    path: str | os.PathLike[str] | None,
    *,
    db_url: str | None = None,
    env: Mapping[str, str] | None = None,
) -> StoreSettings | None:
    """The store's settings without validating the rest of the configuration.

    ``db_url`` is the ``--db`` flag. None when the ``[store]`` section holds
    something only the full validation (:func:`collectbus.config.load_config`)
    can judge; an invalid URL or file is a :class:`ConfigError` as there.
    """
    from collectbus.store.deadline import DEFAULT_STATEMENT_TIMEOUT_S

    env = os.environ if env is None else env
    data, source = read_config_file(path, env)
    store = data.get("store", {})
    if not isinstance(store, dict) or not STORE_KEYS.issuperset(store):
        return None
    url, url_source = store.get("url", DEFAULT_DB_URL), source
    if env.get("COLLECTBUS_DB_URL"):
        url, url_source = env["COLLECTBUS_DB_URL"], "environment variable COLLECTBUS_DB_URL"
    if db_url is not None:
        url, url_source = db_url, "command line"
    password_file = store.get("password_file")
    timeout = store.get("statement_timeout", DEFAULT_STATEMENT_TIMEOUT_S)
    if not isinstance(url, str) or not isinstance(password_file, str | None):
        return None
    try:
        seconds = parse_duration(timeout)
    except ValueError:
        return None
    engine = engine_options(store)
    if engine is None:
        return None
    check_url(url, url_source)
    return StoreSettings(
        url=url, password_file=password_file, statement_timeout=seconds, engine=engine
    )


def host_interval(
    path: str | os.PathLike[str] | None, *, env: Mapping[str, str] | None = None
) -> float | None:
    """The host collector's interval in seconds, without validating the rest of
    the configuration: ``[collectors.host] interval``, else its tier's
    (``[collectors.host] tier`` in ``[bus] tiers``). None when a value is not one
    this reading can vouch for; the full validation then names it."""
    data, _source = read_config_file(path, os.environ if env is None else env)
    collectors = data.get("collectors", {})
    host = collectors.get("host", {}) if isinstance(collectors, dict) else None
    bus = data.get("bus", {})
    if not isinstance(host, dict) or not isinstance(bus, dict):
        return None
    try:
        if host.get("interval") is not None:
            return parse_duration(host["interval"])
        tiers = bus.get("tiers", DEFAULT_TIERS)
        tier = host.get("tier", DEFAULT_HOST_TIER)
        if not isinstance(tiers, dict) or tier not in tiers:
            return None
        return parse_duration(tiers[tier])
    except ValueError:
        return None
