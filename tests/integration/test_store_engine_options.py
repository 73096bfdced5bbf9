"""``[store] pool_size``, ``max_overflow`` and ``echo``: they reach the engine,
SQL is logged (never onto a command's output), and bad values stop at load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from collectbus.cli.context import CliContext
from collectbus.store import open as open_store
from tests.integration.cli_helpers import collectbus, collectbus_env


def _config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "collectbus.toml"
    path.write_text("[store]\n" + body)
    return path


def test_pool_size_and_overflow_reach_the_engine(tmp_path: Path, store_url: str) -> None:
    open_store(store_url).close()  # the schema, for the reader
    cli = CliContext(config_path=str(_config(tmp_path, "pool_size = 3\nmax_overflow = 7\n")))
    cli.db_url = store_url
    for store in (cli.read_store(), cli.open_store()):
        try:
            pool = store.engine.pool
            assert pool.size() == 3  # type: ignore[attr-defined]
            assert pool._max_overflow == 7  # type: ignore[attr-defined]
        finally:
            store.close()


def test_without_them_the_pool_has_sqlalchemys_defaults(tmp_path: Path, store_url: str) -> None:
    open_store(store_url).close()
    cli = CliContext(config_path=str(_config(tmp_path, "")), db_url=store_url)
    store = cli.read_store()
    try:
        assert store.engine.pool.size() == 5  # type: ignore[attr-defined]
        assert store.engine.pool._max_overflow == 10  # type: ignore[attr-defined]
    finally:
        store.close()


def test_echo_logs_every_statement_on_stderr_and_keeps_stdout_clean(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cb.db'}"
    open_store(url).close()
    env = collectbus_env(tmp_path, url)
    env["COLLECTBUS_CONFIG"] = str(_config(tmp_path, "echo = true\n"))
    done = collectbus("jobs", "--format", "json", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []  # the data alone
    assert "SELECT version_num FROM alembic_version" in done.stderr
    assert "FROM jobs" in done.stderr
    quiet = _config(tmp_path, "echo = false\n")
    env["COLLECTBUS_CONFIG"] = str(quiet)
    done = collectbus("jobs", "--format", "json", cwd=tmp_path, env=env)
    assert "SELECT" not in done.stderr


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("pool_size = 0\n", "store.pool_size: Input should be greater than or equal to 1"),
        ('pool_size = "5"\n', "store.pool_size: Input should be a valid integer"),
        ("max_overflow = -1\n", "store.max_overflow: Input should be greater than or equal to 0"),
        ('echo = "yes"\n', "store.echo: Input should be a valid boolean"),
    ],
)
@pytest.mark.parametrize("command", [("jobs",), ("db", "status")])
def test_bad_values_are_refused_at_load_in_one_line(
    tmp_path: Path, body: str, message: str, command: tuple[str, ...]
) -> None:
    # jobs reads the [store] section alone; db status loads the whole configuration.
    config = _config(tmp_path, body)
    env = collectbus_env(tmp_path, f"sqlite:///{tmp_path / 'cb.db'}")
    env["COLLECTBUS_CONFIG"] = str(config)
    done = collectbus(*command, cwd=tmp_path, env=env)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines()[0] == f"collectbus: error: {config}: {message}"
