from __future__ import annotations

from pathlib import Path

import pytest

from collectbus.config import database_url, load_config, parse_duration
from collectbus.errors import ConfigError
from collectbus.urls import mask_url


def test_defaults_without_any_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = load_config(env={"XDG_CONFIG_HOME": str(tmp_path / "none")})
    assert config.store.url == "sqlite:///collectbus.db"
    assert config.bus.tiers == {"inventory": 300.0, "system": 10.0, "fast": 1.0}
    assert config.collectors.host.proc_root == "/proc"


def test_lookup_order_flag_over_env_over_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "collectbus.toml").write_text(
        'host = "from-file"\n[store]\nurl = "sqlite:///file.db"\n[collectors.host]\ninterval = "2s"\n'
    )
    env = {"XDG_CONFIG_HOME": str(tmp_path / "none")}
    config = load_config(env=env)
    assert config.source == "collectbus.toml"
    assert (config.host, config.store.url, config.collectors.host.interval) == (
        "from-file",
        "sqlite:///file.db",
        2.0,
    )
    env["COLLECTBUS_DB_URL"] = "sqlite:///env.db"
    assert load_config(env=env).store.url == "sqlite:///env.db"
    flags = {"store.url": "sqlite:///flag.db", "host": None}
    config = load_config(env=env, overrides=flags)
    assert config.store.url == "sqlite:///flag.db"
    assert config.host == "from-file"


def test_user_config_used_when_no_local_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    user = tmp_path / "xdg" / "collectbus"
    user.mkdir(parents=True)
    (user / "collectbus.toml").write_text('host = "from-user"\n')
    config = load_config(env={"XDG_CONFIG_HOME": str(tmp_path / "xdg")})
    assert config.host == "from-user"
    assert config.source.endswith("collectbus.toml")


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[store]\nurll = 1\n", "store.urll: unknown key; did you mean 'url'\\?"),
        ("[collectors.slurm]\nenable = true\n", "unknown key; did you mean 'enabled'\\?"),
        (
            '[[aggregates]]\nname = "a"\ntabel = "t"\n',
            "aggregates.0.tabel: unknown key; did you mean 'table'\\? \\(and 1 more\\)",
        ),
        ("[bus]\nzzz = 1\n", "bus.zzz: unknown key \\(|bus.zzz: unknown key$"),
        (
            '[collectors.pbs]\nenabled = "yes"\n',
            "collectors.pbs.enabled: Input should be a valid boolean",
        ),
        ('[collectors.host]\ninterval = "soon"\n', "collectors.host.interval"),
        ("[bus]\njitter = 2.0\n", "bus.jitter"),
        ("[bus\n", "invalid TOML"),
        ('[store]\nurl = "postgresql://u:secret@h/db"\n', "password in the URL"),
        (
            "[collectors.host]\ndisk_exclude = ['(loop']\n",
            "collectors.host.disk_exclude.*not a regular",
        ),
        ('[collectors.host]\ncgroup = "maybe"\n', "collectors.host.cgroup"),
        ("[collectors.host]\nmax_devices = 0\n", "collectors.host.max_devices"),
        (
            '[collectors.processes]\nenabled = true\ntier = "weekly"\n',
            "collectors.processes.tier: unknown tier",
        ),
        ("[collectors.processes]\ntop = 0\n", "collectors.processes.top"),
        (
            '[collectors.host_inventory]\ntier = "weekly"\n',
            "collectors.host_inventory.tier: unknown tier",
        ),
    ],
)
def test_errors_name_the_file_and_key(tmp_path: Path, toml: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError, match=message) as info:
        load_config(path, env={})
    assert str(path) in str(info.value)
    assert "secret" not in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_named_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml", env={})


def test_password_from_env_or_file_never_from_url(tmp_path: Path) -> None:
    config = load_config(env={"COLLECTBUS_DB_URL": "postgresql://app@db/metrics"})
    url = database_url(config, env={"COLLECTBUS_DB_PASSWORD": "s3cret"})
    assert url == "postgresql://app:s3cret@db/metrics"
    assert "s3cret" not in mask_url(url)
    secret = tmp_path / "pw"
    secret.write_text("fromfile\n")
    path = tmp_path / "c.toml"
    path.write_text(f'[store]\nurl = "postgresql://app@db/metrics"\npassword_file = "{secret}"\n')
    assert database_url(load_config(path, env={}), env={}) == "postgresql://app:fromfile@db/metrics"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        (10, 10.0),
        (0.5, 0.5),
        ("500ms", 0.5),
        ("10s", 10.0),
        ("5m", 300.0),
        ("1h", 3600.0),
        ("7d", 604800.0),
    ],
)
def test_parse_duration(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "10x", "-1s", 0, True, "1.2.3s"])
def test_parse_duration_rejects(bad: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


def test_host_filter_keys_reach_the_collector(tmp_path: Path) -> None:
    from collectbus.pipeline import host_collector_options

    path = tmp_path / "c.toml"
    path.write_text(
        "[collectors.host]\n"
        "disk_include = ['^nvme']\nnet_exclude = ['^veth']\nmax_devices = 8\n"
        'cgroup = "off"\nsys_root = "/s"\n'
    )
    options = host_collector_options(load_config(path, env={}))
    filters = options["filters"]
    assert options["cgroup"] == "off"
    assert options["sys_root"] == "/s"
    assert filters.disk_include == ("^nvme",)  # type: ignore[attr-defined]
    assert filters.disk_exclude == (r"^(z?ram|loop|fd)\d+$",)  # type: ignore[attr-defined]
    assert filters.net_exclude == ("^veth",)  # type: ignore[attr-defined]
    assert filters.max_devices == 8  # type: ignore[attr-defined]
