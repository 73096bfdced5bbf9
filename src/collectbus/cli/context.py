"""What every command shares: the global options and the configuration.

Nothing heavy is imported here: the configuration (pydantic) and the store
(SQLAlchemy) are imported by the first command that asks for them, so that
``collectbus --help`` answers at once. Commands that only read the store
take its settings from :func:`collectbus.configfile.store_settings`, without
validating the whole configuration (pydantic): the commands that collect,
serve or write validate it in full.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

import click

if TYPE_CHECKING:
    from collectbus.config import Config
    from collectbus.configfile import StoreSettings
    from collectbus.store import Store
    from collectbus.store.reader import StoreReader

#: A store or its read side, as :meth:`CliContext._open_to_read` opens them.
R = TypeVar("R", bound="StoreReader")


@dataclass
class CliContext:
    """Global options, and the configuration they select, loaded once."""

    config_path: str | None = None
    db_url: str | None = None
    proc_root: str | None = None
    utc: bool = False
    verbose: int = 0
    _config: Config | None = field(default=None, repr=False)

    def config(self, **overrides: object) -> Config:
        """The configuration: flags > environment > file > defaults."""
        if self._config is None or overrides:
            from collectbus.config import load_config

            flags: dict[str, object] = {
                "store.url": self.db_url,
                "collectors.host.proc_root": self.proc_root,
                **overrides,
            }
            self._config = load_config(self.config_path, overrides=flags)
        return self._config

    def forget_config(self) -> None:
        """Load the configuration again when next asked (a global option changed)."""
        self._config = None

    def store_settings(self) -> StoreSettings:
        """The store's URL and deadline: from the light reading of the config
        file, or from the full configuration when that is loaded or needed."""
        from collectbus.configfile import StoreSettings, store_settings

        if self._config is None:
            light = store_settings(self.config_path, db_url=self.db_url)
            if light is not None:
                return light
        store = self.config().store
        return StoreSettings(
            store.url, store.password_file, store.statement_timeout, store.engine_options()
        )

    def open_store(self, *, migrate: bool = True) -> Store:
        """The store, its schema brought up to date (for commands that write)."""
        from collectbus.config import database_url
        from collectbus.store import open as open_store

        config = self.config()
        return open_store(
            database_url(config),
            migrate=migrate,
            statement_timeout_s=config.store.statement_timeout,
            **config.store.engine_options(),
        )

    def read_store(self, *, check_schema: bool = True) -> Store:
        """The store, for commands that only read: nothing is created or migrated."""
        from collectbus.store import open as open_store

        return self._open_to_read(
            lambda url, settings: open_store(
                url,
                migrate=False,
                statement_timeout_s=settings.statement_timeout,
                **settings.engine,
            ),
            check_schema=check_schema,
        )

    def read_side(self) -> StoreReader:
        """The store's read side alone, for commands that only read host samples,
        jobs or snapshots (:mod:`collectbus.store.reader`): it imports none of the
        write side, so that they answer at once."""
        from collectbus.store.reader import open_reader

        return self._open_to_read(
            lambda url, settings: open_reader(
                url, statement_timeout_s=settings.statement_timeout, **settings.engine
            ),
            check_schema=True,
        )

    def _open_to_read(self, opener: Callable[[str, StoreSettings], R], *, check_schema: bool) -> R:
        """``opener(url, settings)`` on the configured store, after
        checking that an SQLite file exists; with ``check_schema``, the schema's
        revision is checked too."""
        from pathlib import Path

        from sqlalchemy.engine import make_url

        from collectbus.errors import StoreError
        from collectbus.urls import mask_url

        settings = self.store_settings()
        url = settings.database_url()
        parsed = make_url(url)
        file = parsed.database if parsed.get_backend_name() == "sqlite" else None
        if file not in (None, "", ":memory:") and not Path(str(file)).exists():
            raise StoreError(
                f"{mask_url(url)}: no such database file",
                hint="check --db, or collect first: collectbus run --duration 30s",
            )
        store = opener(url, settings)
        try:
            if check_schema:
                store.check_schema()
        except BaseException:
            store.close()
            raise
        return store


pass_cli = click.make_pass_decorator(CliContext, ensure=True)
