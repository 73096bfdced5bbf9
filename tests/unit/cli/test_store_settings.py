"""Commands that read the store take its settings without pydantic, and get
what the full validation gives, or its error."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from collectbus.config import StoreConfig, load_config
from collectbus.configfile import STORE_KEYS, store_settings
from collectbus.errors import ConfigError


def test_store_keys_are_the_store_sections_keys() -> None:
    assert set(StoreConfig.model_fields) == STORE_KEYS


@pytest.mark.parametrize(
    ("toml", "env", "flag"),
    [
        ("", {}, None),
        ('[store]\nurl = "sqlite:///file.db"\nstatement_timeout = "2m"\n', {}, None),
        ('[store]\nurl = "sqlite:///file.db"\n', {"COLLECTBUS_DB_URL": "sqlite:///env.db"}, None),
        (
            '[store]\nurl = "sqlite:///file.db"\n',
            {"COLLECTBUS_DB_URL": "sqlite:///e.db"},
            "sqlite:///f.db",
        ),
        (
            '[store]\nurl = "postgresql://app@db/m"\npassword_file = "pw"\nqueue_size = 5\n',
            {},
            None,
        ),
        ('host = "h"\n[bus]\nworkers = 2\n[store]\nstatement_timeout = 7\n', {}, None),
        ("[store]\npool_size = 3\nmax_overflow = 0\necho = true\n", {}, None),
        ("[store]\npool_size = 20\n", {}, None),
    ],
)
def test_same_settings_as_the_full_configuration(
    tmp_path: Path, toml: str, env: dict[str, str], flag: str | None
) -> None:
    path = tmp_path / "c.toml"
    path.write_text(toml)
    light = store_settings(path, db_url=flag, env=env)
    full = load_config(path, overrides={"store.url": flag}, env=env).store
    assert light is not None
    assert (light.url, light.password_file, light.statement_timeout, light.engine) == (
        full.url,
        full.password_file,
        full.statement_timeout,
        full.engine_options(),
    )


@pytest.mark.parametrize(
    "toml",
    [
        "[store]\nurll = 1\n",  # a typo: the full validation names the key
        "[store]\nurl = 5\n",
        '[store]\nstatement_timeout = "soon"\n',
        "store = 3\n",
        "[store]\npool_size = 0\n",
        '[store]\npool_size = "5"\n',
        "[store]\npool_size = true\n",
        "[store]\nmax_overflow = -1\n",
        "[store]\nmax_overflow = 1.5\n",
        '[store]\necho = "yes"\n',
    ],
)
def test_what_it_cannot_vouch_for_is_left_to_the_full_validation(tmp_path: Path, toml: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(toml)
    assert store_settings(path, env={}) is None
    with pytest.raises(ConfigError):
        load_config(path, env={})


@pytest.mark.parametrize(
    ("toml", "env", "message"),
    [
        ('[store]\nurl = "postgresql://u:secret@h/db"\n', {}, "password in the URL"),
        ('[store]\nurl = "mysql://h/db"\n', {}, "'mysql' databases are not supported"),
        ("", {"COLLECTBUS_DB_URL": "nonsense"}, "environment variable COLLECTBUS_DB_URL"),
        ("[bus\n", {}, "invalid TOML"),
    ],
)
def test_errors_are_those_of_the_full_validation(
    tmp_path: Path, toml: str, env: dict[str, str], message: str
) -> None:
    path = tmp_path / "c.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError, match=message) as light:
        store_settings(path, env=env)
    with pytest.raises(ConfigError) as full:
        load_config(path, env=env)
    assert str(light.value) == str(full.value)
    assert "secret" not in str(light.value)


def test_missing_named_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.toml: config file not found"):
        store_settings(tmp_path / "nope.toml", env={})


def test_a_read_command_reports_a_typo_in_the_store_section(tmp_path: Path) -> None:
    """Through the command line: exit 2 and the key named, as before."""
    config = tmp_path / "c.toml"
    config.write_text('[store]\nurll = "sqlite:///x.db"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("COLLECTBUS_")}
    done = subprocess.run(
        [sys.executable, "-m", "collectbus", "--config", str(config), "jobs"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 2
    assert f"{config}: store.urll: unknown key" in done.stderr
