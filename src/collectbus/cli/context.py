"""What every command shares: the global options and the configuration."""

from __future__ import annotations

from dataclasses import dataclass, field

import click

from collectbus.config import Config, database_url, load_config
from collectbus.store import Store
from collectbus.store import open as open_store


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
            flags: dict[str, object] = {
                "store.url": self.db_url,
                "collectors.host.proc_root": self.proc_root,
                **overrides,
            }
            self._config = load_config(self.config_path, overrides=flags)
        return self._config

    def open_store(self, *, migrate: bool = True) -> Store:
        return open_store(database_url(self.config()), migrate=migrate)


pass_cli = click.make_pass_decorator(CliContext, ensure=True)
