"""What every command shares: the global options and the configuration.

Nothing heavy is imported here: the configuration (pydantic) and the store
(SQLAlchemy, Alembic) are imported by the first command that asks for them,
so that ``collectbus --help`` answers at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from collectbus.config import Config
    from collectbus.store import Store


@dataclass
class CliContext:
    """Global options, and the configuration they select, loaded once."""

    config_path: str | None = None
    db_url: str | None = None
    proc_root: str | None = None
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

    def open_store(self, *, migrate: bool = True) -> Store:
        """The store, its schema brought up to date (for commands that write)."""
        from collectbus.config import database_url
        from collectbus.store import open as open_store

        config = self.config()
        return open_store(
            database_url(config),
            migrate=migrate,
            statement_timeout_s=config.store.statement_timeout,
        )

    def read_store(self, *, check_schema: bool = True) -> Store:
        """The store, for commands that only read: nothing is created or migrated."""
        from pathlib import Path

        from sqlalchemy.engine import make_url

        from collectbus.config import database_url
        from collectbus.errors import StoreError
        from collectbus.store import open as open_store
        from collectbus.urls import mask_url

        url = database_url(self.config())
        parsed = make_url(url)
        file = parsed.database if parsed.get_backend_name() == "sqlite" else None
        if file not in (None, "", ":memory:") and not Path(str(file)).exists():
            raise StoreError(
                f"{mask_url(url)}: no such database file",
                hint="check --db, or collect first: collectbus run --duration 30s",
            )
        store = open_store(
            url, migrate=False, statement_timeout_s=self.config().store.statement_timeout
        )
        try:
            if check_schema:
                store.check_schema()
        except BaseException:
            store.close()
            raise
        return store


pass_cli = click.make_pass_decorator(CliContext, ensure=True)
